"""The ``simulated`` source: plausible, seedable readings for demos and tests only.

Every reading, process and sample it returns has ``simulated=True`` and every
GPU name ends in ``(simulated)``, so no surface can pass them off as real. The
same seed and host give the same sequence of samples; the UUIDs depend on both,
so two simulated nodes of a demo fleet never share a GPU identity.
"""

from __future__ import annotations

import random
import socket
import time
import uuid
from dataclasses import dataclass

from workbench.gpu.model import GpuProcess, GpuReading, GpuSample
from workbench.gpu.source import GpuSource

MODEL = "NVIDIA A100-SXM4-80GB"
MEMORY_TOTAL = 80 * 1024**3
POWER_LIMIT = 400.0
IDLE_POWER = 60.0
MAX_SM_CLOCK, IDLE_SM_CLOCK, MEMORY_CLOCK = 1410, 210, 1593
GIB = 1024**3

# (user, command, notebook or None, GiB held, share of the GPU's load)
_WORKLOADS = (
    ("alice", "python -m ipykernel_launcher -f kernel-sim.json", "notebooks/train_resnet.ipynb", 31.5, 0.9),
    ("bob", "python train.py --config configs/bert-large.yaml", None, 22.0, 0.8),
    ("carol", "python -m torch.distributed.run eval.py", None, 9.5, 0.5),
)


@dataclass
class _SimGpu:
    index: int
    uuid: str
    load: float  # where utilization drifts towards, 0..100
    utilization: float
    mig: bool


class SimulatedSource(GpuSource):
    """``gpus`` made-up GPUs on ``host`` with a few made-up processes."""

    name = "simulated"
    simulated = True

    def __init__(self, gpus: int = 4, *, seed: int = 0, host: str | None = None) -> None:
        self.host = host or socket.gethostname()
        self._rng = random.Random(f"{seed}:{self.host}")
        self._gpus = [
            _SimGpu(
                index=i,
                uuid=f"GPU-{uuid.UUID(int=self._rng.getrandbits(128), version=4)}",
                load=(load := self._rng.uniform(0, 100)),
                utilization=load,
                mig=(i == gpus - 1 and gpus > 2),  # one MIG-enabled GPU in a bigger box
            )
            for i in range(gpus)
        ]
        # workload k runs on GPU k (while there are GPUs); pids are made up, never looked up
        self._workloads = [(1000 + 37 * k, k, *w) for k, w in enumerate(_WORKLOADS[:gpus])]

    def sample(self) -> GpuSample:
        rng = self._rng
        sample = GpuSample(timestamp=time.time(), host=self.host, source=self.name, simulated=True, available=True)
        busy: dict[int, float] = {}  # GPU index -> bytes its workloads hold
        for _pid, gpu_index, _user, _command, _notebook, gib, _share in self._workloads:
            busy[gpu_index] = busy.get(gpu_index, 0.0) + gib * GIB
        for gpu in self._gpus:
            if rng.random() < 0.05:  # now and then a job starts or ends
                gpu.load = rng.choice([0.0, rng.uniform(20, 100)])
            if gpu.index in busy and gpu.load < 30:
                gpu.load = rng.uniform(60, 100)
            gpu.utilization = min(
                100.0, max(0.0, gpu.utilization + 0.3 * (gpu.load - gpu.utilization) + rng.gauss(0, 3))
            )
            util = gpu.utilization
            used = busy.get(gpu.index, 0.0) + 0.5 * GIB
            sample.gpus.append(
                GpuReading(
                    index=gpu.index,
                    name=f"{MODEL} (simulated)",
                    uuid=gpu.uuid,
                    host=self.host,
                    utilization_gpu=round(util, 1),
                    utilization_memory=round(util * 0.45, 1),
                    memory_used=int(used),
                    memory_total=MEMORY_TOTAL,
                    temperature=round(32 + util * 0.42 + rng.gauss(0, 0.5), 1),
                    power=round(IDLE_POWER + util / 100 * (POWER_LIMIT - IDLE_POWER) * rng.uniform(0.9, 1.0), 1),
                    power_limit=POWER_LIMIT,
                    sm_clock=MAX_SM_CLOCK if util > 5 else IDLE_SM_CLOCK,
                    memory_clock=MEMORY_CLOCK,
                    pcie_rx=int(util * rng.uniform(800, 1200)),
                    pcie_tx=int(util * rng.uniform(200, 400)),
                    mig_mode=gpu.mig,
                    simulated=True,
                )
            )
        for pid, gpu_index, user, command, notebook, gib, share in self._workloads:
            gpu = self._gpus[gpu_index]
            sample.processes.append(
                GpuProcess(
                    pid=pid,
                    gpu_index=gpu_index,
                    gpu_uuid=gpu.uuid,
                    host=self.host,
                    used_memory=int(gib * GIB),
                    sm_utilization=round(gpu.utilization * share, 1),
                    memory_utilization=round(gpu.utilization * share * 0.4, 1),
                    user=user,
                    command=f"{command} (simulated)",
                    kernel_id="00000000-0000-4000-8000-000000000000" if notebook else None,
                    kernel_pid=pid if notebook else None,
                    notebook_path=notebook,
                    simulated=True,
                )
            )
        return sample
