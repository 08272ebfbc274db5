"""Where tasks run: in this process, a local process pool, Dask or Ray.

    with open_executor("dask", jobs=2, address=None) as ex:
        for task, rows in ex.run(run_task, study, tasks):   # in completion order
            ...

Every executor runs the same `fn(study, task)`; the study (a few kB) travels with each
task (Ray: put in the object store once) and each worker keeps its loaded models and cost tables across tasks. Results come back
in completion order; the caller merges them by point id, so the outcome does not depend
on the executor. An address that does not answer fails within CONNECT_TIMEOUT_S.
"""
from __future__ import annotations

import contextlib
import multiprocessing
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

from speccc.errors import SpecccError

CONNECT_TIMEOUT_S = 10
EXECUTORS = ("local", "dask", "ray")


class Inline:
    """jobs = 1: run in this process (no start-up cost; shares our cost tables)."""

    def run(self, fn, study, tasks):
        for t in tasks:
            yield t, fn(study, t)


class Pool:
    def __init__(self, jobs: int):
        ctx = multiprocessing.get_context("fork" if "fork" in
                                          multiprocessing.get_all_start_methods() else "spawn")
        self.pool = ProcessPoolExecutor(jobs, mp_context=ctx)

    def run(self, fn, study, tasks):
        yield from _drain({self.pool.submit(fn, study, t): t for t in tasks}, _wait_futures)

    def close(self):
        self.pool.shutdown(cancel_futures=True)


def _wait_futures(pending):
    done, _ = wait(pending, return_when=FIRST_COMPLETED)
    return [(f, f.result()) for f in done]


def _drain(pending: dict, wait_some):
    while pending:
        for fut, result in wait_some(list(pending)):
            yield pending.pop(fut), result


class Dask:
    def __init__(self, jobs: int, address: str | None):
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise SpecccError("--executor dask needs dask[distributed]: pip install "
                              "'dask[distributed]'") from None
        self.cluster = None
        if address:
            try:
                self.client = Client(address, timeout=f"{CONNECT_TIMEOUT_S}s")
            except (OSError, TimeoutError) as err:
                raise SpecccError(f"cannot reach the Dask scheduler at {address} within "
                                  f"{CONNECT_TIMEOUT_S} s ({type(err).__name__})") from None
        else:
            self.cluster = LocalCluster(n_workers=jobs, threads_per_worker=1,
                                        processes=True, dashboard_address=None)
            self.client = Client(self.cluster)

    def run(self, fn, study, tasks):
        from distributed import as_completed
        # the study is small (a few kB): it travels with each task (scattering it
        # with broadcast=True can stall a LocalCluster that is still starting workers)
        futs = [self.client.submit(fn, study, t, pure=False) for t in tasks]
        index = dict(zip(futs, tasks))
        for fut in as_completed(futs):
            yield index[fut], fut.result()

    def close(self):
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


class Ray:
    def __init__(self, jobs: int, address: str | None):
        try:
            import ray
        except ImportError:
            raise SpecccError("--executor ray needs ray: pip install 'speccc[ray]'") from None
        self.ray = ray
        if address and address != "auto":
            _check_reachable(address, "Ray cluster")   # ray.init retries for minutes
        try:
            if address:
                ray.init(address=address, ignore_reinit_error=True, log_to_driver=False)
            else:
                ray.init(num_cpus=jobs, ignore_reinit_error=True, log_to_driver=False,
                         include_dashboard=False)
        except (ConnectionError, TimeoutError, RuntimeError) as err:
            raise SpecccError(f"cannot reach the Ray cluster at {address}: "
                              f"{str(err).splitlines()[0]}") from None

    def run(self, fn, study, tasks):
        remote = self.ray.remote(num_cpus=1)(fn)
        ref = self.ray.put(study)
        pending = {remote.remote(ref, t): t for t in tasks}
        while pending:
            done, _ = self.ray.wait(list(pending), num_returns=1)
            for r in done:
                yield pending.pop(r), self.ray.get(r)

    def close(self):
        self.ray.shutdown()


def _check_reachable(address: str, what: str) -> None:
    """A TCP connection to host:port within CONNECT_TIMEOUT_S, or a one-line error."""
    import socket
    hostport = address.split("://", 1)[-1]
    host, _, port = hostport.rpartition(":")
    try:
        socket.create_connection((host or "127.0.0.1", int(port)),
                                 timeout=CONNECT_TIMEOUT_S).close()
    except (OSError, ValueError) as err:
        raise SpecccError(f"cannot reach the {what} at {address} within "
                          f"{CONNECT_TIMEOUT_S} s ({type(err).__name__})") from None


@contextlib.contextmanager
def open_executor(name: str, jobs: int = 1, address: str | None = None):
    if name not in EXECUTORS:
        raise SpecccError(f"--executor must be one of {', '.join(EXECUTORS)}, got {name!r}")
    if jobs < 1:
        raise SpecccError(f"--jobs must be >= 1, got {jobs}")
    if address and name == "local":
        raise SpecccError("--address is for --executor dask or ray")
    ex = {"local": lambda: Inline() if jobs == 1 else Pool(jobs),
          "dask": lambda: Dask(jobs, address), "ray": lambda: Ray(jobs, address)}[name]()
    try:
        yield ex
    finally:
        close = getattr(ex, "close", None)
        if close:
            close()
