"""Dask for the batch stages (``score.engine: dask``): a cluster to run on, and partitions run on it in order.

:func:`dask_client` connects to ``dask.scheduler`` (or ``$DASK_SCHEDULER_ADDRESS``, the variable Dask's own
configuration reads), or starts a ``LocalCluster`` sized to the machine (``dask.n_workers``,
``dask.threads_per_worker``; null = Dask's defaults), logs its dashboard link, and shuts it down afterwards.
:func:`ordered_results` runs one task per partition with at most ``window`` partitions in flight and yields their
results in partition order, so the caller can write them as they come while memory stays bounded by the window,
not the batch; it logs the partitions done. :func:`workers_see` tells whether the workers can read a local path
(a local cluster can; a remote one only through a shared volume).

Workers need the project installed (the image of deploy/Dockerfile on Kubernetes): tasks are functions of
``lifecycle`` and the model travels to them pickled, so their package versions must match the client's.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
import urllib.parse
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from lifecycle.config import DASK_PROTOCOLS, Dask
from lifecycle.errors import LifecycleError

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 30  # seconds to wait for a scheduler at dask.scheduler before giving up
PROGRESS_EVERY_S = 5.0  # seconds between two "partitions done" lines


class ClusterError(LifecycleError):
    """No Dask cluster to run on: the scheduler address does not answer, or its workers cannot do the work."""


def scheduler_address(cfg: Dask) -> str | None:
    """``dask.scheduler``, else ``$DASK_SCHEDULER_ADDRESS`` (Dask's ``scheduler-address`` setting), else None.

    Raises :class:`ClusterError` when the environment's address is not ``<protocol>://<host>:<port>``
    (``dask.scheduler`` itself is checked when params.yaml is loaded).
    """
    if cfg.scheduler:
        return cfg.scheduler
    import dask

    address = dask.config.get("scheduler-address", None)
    if not address:
        return None
    url = urllib.parse.urlsplit(str(address))
    try:
        port = url.port
    except ValueError:
        port = None
    if url.scheme not in DASK_PROTOCOLS or not url.hostname or port is None:
        raise ClusterError(
            f"DASK_SCHEDULER_ADDRESS={address!r} is not a Dask scheduler address; set it to "
            "<protocol>://<host>:<port>, e.g. tcp://dask-scheduler:8786, or unset it for a local cluster"
        )
    return str(address)


@contextlib.contextmanager
def dask_client(cfg: Dask) -> Iterator[Any]:
    """A ``distributed.Client`` for the ``dask`` section: connected to the scheduler address when there is one
    (:func:`scheduler_address`), else to a ``LocalCluster`` on loopback started here and closed on exit.

    Logs where it runs (workers, threads) and the dashboard link. Raises :class:`ClusterError` when the scheduler
    does not answer within ``CONNECT_TIMEOUT_S`` seconds or has no worker.
    """
    from distributed import Client, LocalCluster

    address = scheduler_address(cfg)
    with contextlib.ExitStack() as stack:
        if address:
            try:
                client = stack.enter_context(Client(address, timeout=CONNECT_TIMEOUT_S))
            except OSError as exc:  # distributed raises OSError (TimeoutError included) when nothing answers
                where = "dask.scheduler" if cfg.scheduler else "DASK_SCHEDULER_ADDRESS"
                raise ClusterError(
                    f"{where}={address}: no Dask scheduler answered within {CONNECT_TIMEOUT_S} s ({exc}); start the "
                    "cluster (deploy/dask/, docs/scale.md) or set dask.scheduler: null for a local cluster"
                ) from None
            kind = "the Dask cluster at " + address
        else:
            started = time.perf_counter()
            cluster = stack.enter_context(
                LocalCluster(
                    n_workers=cfg.n_workers,
                    threads_per_worker=cfg.threads_per_worker,
                    processes=True,
                    host="127.0.0.1",
                    dashboard_address="127.0.0.1:0",  # a free port: several clusters may run on one machine
                )
            )
            client = stack.enter_context(Client(cluster))
            kind = f"a local Dask cluster (started in {time.perf_counter() - started:.1f} s)"
        workers = client.scheduler_info(n_workers=-1)["workers"]
        if not workers:
            raise ClusterError(f"{kind} has no worker; start workers (deploy/dask/) and retry")
        threads = sum(w["nthreads"] for w in workers.values())
        log.info("running on %s: %d workers, %d threads; dashboard %s", kind, len(workers), threads,
                 client.dashboard_link)  # fmt: skip
        yield client


def total_threads(client: Any) -> int:
    """Worker threads of the cluster: the tasks that can run at once."""
    return sum(w["nthreads"] for w in client.scheduler_info(n_workers=-1)["workers"].values()) or 1


def workers_see(client: Any, path: str | os.PathLike[str]) -> bool:
    """True when every worker finds ``path`` (absolute) on its own file system, with the size the client sees."""
    target = os.path.abspath(path)
    size = os.path.getsize(target) if os.path.isfile(target) else -1

    def probe(target: str = target) -> int:
        return os.path.getsize(target) if os.path.isfile(target) else (0 if os.path.isdir(target) else -2)

    seen = client.run(probe)
    return bool(seen) and all(v == (size if size >= 0 else 0) for v in seen.values())


def ordered_results(
    client: Any,
    func: Callable[..., Any],
    items: Iterable[Any],
    *args: Any,
    window: int,
    what: str = "partitions done",
    **kwargs: Any,
) -> Iterator[Any]:
    """Run ``func(item, *args, **kwargs)`` on the cluster for every item and yield the results in item order.

    At most ``window`` tasks are submitted and not yet consumed, so the workers hold at most ``window`` results and
    the caller one at a time. Logs ``<what>: k/n`` at most every ``PROGRESS_EVERY_S`` seconds and at the end.
    A task's exception is raised here, with its own type and message (the other tasks are cancelled).
    """
    pending = list(items)
    total = len(pending)
    queue: list[Any] = []
    done = 0
    last = time.perf_counter()
    position = 0
    try:
        while position < total or queue:
            while position < total and len(queue) < max(window, 1):
                queue.append(client.submit(func, pending[position], *args, pure=False, **kwargs))
                position += 1
            future = queue.pop(0)
            result = future.result()
            future.release()
            done += 1
            if done == total or time.perf_counter() - last >= PROGRESS_EVERY_S:
                log.info("%s: %d/%d", what, done, total)
                last = time.perf_counter()
            yield result
    finally:
        for future in queue:
            future.cancel()
