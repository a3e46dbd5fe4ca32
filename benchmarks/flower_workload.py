"""The W1/W2 workload in Flower's Simulation Runtime; runs inside benchmarks/.flower-venv, started by vs_flower.py.

It reads everything that makes the workload from an .npz written by vs_flower.py (training
and test arrays, each client's index list, the initial model, and for every round the
sampled client ids and their shuffle seeds), so Flower trains exactly the clients, minibatches
and model that fedref-ray trains. The network is fedref_ray.models.build_model (fedref_ray is
installed into the Flower venv with --no-deps: the model registry needs only torch).

API: Flower's message API (ServerApp + ClientApp, the serverapp FedAvg strategy) run by
flwr.simulation.run_simulation on the Ray backend, 1 CPU per client. Each virtual client is
executed by whichever SuperNode Flower sampled; the client id travels in the train config.

    python flower_workload.py WORKLOAD.npz RESULT.json [--cpus 2]
"""

from __future__ import annotations

import time

T_PROCESS = time.perf_counter()  # before the heavy imports: end-to-end includes them

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
from collections import OrderedDict  # noqa: E402
from collections.abc import Iterable  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MessageType, MetricRecord, RecordDict  # noqa: E402
from flwr.clientapp import ClientApp  # noqa: E402
from flwr.serverapp import Grid, ServerApp  # noqa: E402
from flwr.serverapp.strategy import FedAvg  # noqa: E402
from flwr.serverapp.strategy.strategy_utils import sample_nodes  # noqa: E402

from fedref_ray.models import build_model  # noqa: E402

NPZ_ENV = "FEDREF_FLOWER_NPZ"

_DATA: dict | None = None
_MODEL: torch.nn.Module | None = None


def data() -> dict:
    """The workload arrays, loaded once per process (the server and each Ray actor)."""
    global _DATA
    if _DATA is None:
        z = np.load(os.environ[NPZ_ENV])
        scale = 255.0 if z["x_train"].dtype == np.uint8 else 1.0
        names = [str(n) for n in z["param_names"]]
        _DATA = {
            "x_train": torch.from_numpy(z["x_train"]).float() / scale,
            "y_train": torch.from_numpy(z["y_train"]),
            "x_test": torch.from_numpy(z["x_test"]).float() / scale,
            "y_test": torch.from_numpy(z["y_test"]),
            "offsets": z["offsets"],
            "indices": z["indices"],
            "sampled": z["sampled"],
            "seeds": z["seeds"],
            "initial": OrderedDict((n, torch.from_numpy(z[f"param:{n}"])) for n in names),
            **{
                k: z[k].item()
                for k in (
                    "lr",
                    "batch_size",
                    "local_epochs",
                    "eval_batch_size",
                    "num_classes",
                    "rounds",
                    "num_clients",
                    "model_name",
                    "hidden",
                )
            },
            "input_shape": tuple(int(d) for d in z["input_shape"]),
        }
    return _DATA


def model() -> torch.nn.Module:
    """One network per process, reused across virtual clients (kinder to Flower than a new one per message)."""
    global _MODEL
    if _MODEL is None:
        d = data()
        hidden = None if int(d["hidden"]) < 0 else int(d["hidden"])
        _MODEL = build_model(str(d["model_name"]), d["input_shape"], int(d["num_classes"]), hidden)
    return _MODEL


client_app = ClientApp()


@client_app.train()
def train(msg: Message, context: Context) -> Message:
    """Local SGD for the client named in the config: same shuffle seed, sorted minibatches and lr as fedref-ray."""
    torch.set_num_threads(1)  # like a fedref-ray worker holding one CPU
    d, net = data(), model()
    config = msg.content["config"]
    cid, seed = int(config["client-id"]), int(config["train-seed"])
    idx = d["indices"][d["offsets"][cid] : d["offsets"][cid + 1]]
    net.load_state_dict(msg.content["arrays"].to_torch_state_dict())
    net.train()
    opt = torch.optim.SGD(net.parameters(), lr=float(d["lr"]))
    rng = np.random.default_rng(seed)
    bs, losses = int(d["batch_size"]), []
    for _ in range(int(d["local_epochs"])):
        order = rng.permutation(idx)
        for b in range(0, len(order), bs):
            batch = torch.from_numpy(np.sort(order[b : b + bs]))
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(net(d["x_train"][batch]), d["y_train"][batch])
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
    metrics = MetricRecord({"train_loss": float(np.mean(losses)), "num-examples": len(idx)})
    content = RecordDict({"arrays": ArrayRecord(net.state_dict()), "metrics": metrics})
    return Message(content=content, reply_to=msg)


class SameClientsFedAvg(FedAvg):
    """FedAvg whose round r trains fedref-ray's sampled clients of round r, one per sampled SuperNode."""

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        d = data()
        clients, seeds = d["sampled"][server_round - 1], d["seeds"][server_round - 1]
        node_ids, _ = sample_nodes(grid, self.min_available_nodes, len(clients))
        messages = []
        for node, cid, seed in zip(node_ids, clients.tolist(), seeds.tolist(), strict=True):
            cfg = ConfigRecord({"server-round": server_round, "client-id": int(cid), "train-seed": int(seed)})
            content = RecordDict({self.arrayrecord_key: arrays, self.configrecord_key: cfg})
            messages.append(Message(content=content, message_type=MessageType.TRAIN, dst_node_id=node))
        return messages


STAMPS: dict[str, dict[int, float]] = {"eval_begin": {}, "eval_end": {}}
ACCURACY: dict[int, float] = {}


def evaluate(server_round: int, arrays: ArrayRecord) -> MetricRecord:
    """Centralised test-set evaluation each round (Flower also calls it for round 0, before training)."""
    STAMPS["eval_begin"][server_round] = time.perf_counter()
    d = data()
    hidden = None if int(d["hidden"]) < 0 else int(d["hidden"])
    net = build_model(str(d["model_name"]), d["input_shape"], int(d["num_classes"]), hidden)
    net.load_state_dict(arrays.to_torch_state_dict())
    net.eval()
    correct, loss_sum, n, eb = 0, 0.0, len(d["y_test"]), int(d["eval_batch_size"])
    with torch.no_grad():
        for b in range(0, n, eb):
            logits = net(d["x_test"][b : b + eb])
            yb = d["y_test"][b : b + eb]
            loss_sum += float(F.cross_entropy(logits, yb, reduction="sum"))
            correct += int((logits.argmax(1) == yb).sum())
    ACCURACY[server_round] = correct / n
    STAMPS["eval_end"][server_round] = time.perf_counter()
    return MetricRecord({"accuracy": correct / n, "loss": loss_sum / n})


server_app = ServerApp()


@server_app.main()
def main(grid: Grid, context: Context) -> None:
    d = data()
    k, m = int(d["num_clients"]), int(d["sampled"].shape[1])
    strategy = SameClientsFedAvg(fraction_train=m / k, fraction_evaluate=0.0, min_train_nodes=m, min_available_nodes=k)
    STAMPS["start"] = {0: time.perf_counter()}
    initial = ArrayRecord(d["initial"])
    strategy.start(grid=grid, initial_arrays=initial, num_rounds=int(d["rounds"]), evaluate_fn=evaluate)


def run(npz: str, out: str, cpus: int, t_process: float) -> None:
    """Run the simulation and write the timestamps (seconds since `t_process`, the interpreter's start) to `out`."""
    from flwr.simulation import run_simulation

    os.environ[NPZ_ENV] = os.path.abspath(npz)  # Ray actors inherit it
    num_clients = int(np.load(npz)["num_clients"])
    t_sim = time.perf_counter()
    run_simulation(
        server_app=server_app,
        client_app=client_app,
        num_supernodes=num_clients,
        backend_config={
            "client_resources": {"num_cpus": 1, "num_gpus": 0.0},
            "init_args": {"num_cpus": cpus, "include_dashboard": False},
        },
    )
    t_end = time.perf_counter()
    rel = {name: {r: t - t_process for r, t in s.items()} for name, s in STAMPS.items()}
    Path(out).write_text(
        json.dumps(
            {
                "imports_s": t_sim - t_process,
                "stamps": rel,
                "accuracy": ACCURACY,
                "end_to_end_inside_s": t_end - t_process,
                "flwr_version": __import__("flwr").__version__,
                "ray_version": __import__("ray").__version__,
                "torch_version": torch.__version__,
            }
        )
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("npz")
    parser.add_argument("out")
    parser.add_argument("--cpus", type=int, default=2)
    args = parser.parse_args()
    import flower_workload  # the apps must live in an importable module, not __main__, for Ray to ship them

    flower_workload.run(args.npz, args.out, args.cpus, T_PROCESS)
