"""`python -m tests.zygote`: runs `python -m <module> <args>` for the tests in processes forked from this one,
which has already imported torch, Lightning, Hydra, betavae (and mlflow, where installed), and decompressed
Fashion-MNIST's files.

Each run is a new process with its own arguments, working directory, stdin, stdout, stderr and exit status,
running the entry point as `python -m` does (runpy, `__main__`; an uncaught SystemExit or exception ends it
through `sys.exit`, the interpreter's way). What it saves is the interpreter start: importing Lightning
(torchmetrics, torchvision, torch._dynamo, scipy) took 10-12 s of the 14 s of a one-epoch job on the 2-core test
machine, for each of the suite's ~100 runs. Lines on stdout are the protocol: one JSON request per line in,
`ZYGOTE {...}` lines out.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import runpy
import sys

EXIT: list[int] = []  # a forked run's exit status, once it has one: ends the process at its last exit step


def child(request: dict) -> None:
    """In the forked process: take the request's directory and files, then run the module as __main__."""
    os.chdir(request["cwd"])
    for fd, path, flags in ((0, os.devnull, os.O_RDONLY), (1, request["stdout"], os.O_WRONLY | os.O_TRUNC),
                            (2, request["stderr"], os.O_WRONLY | os.O_TRUNC)):  # fmt: skip
        target = os.open(path, flags | (os.O_CREAT if fd else 0), 0o644)
        os.dup2(target, fd)
        os.close(target)
    sys.argv = [request["module"], *request["args"]]
    try:
        runpy.run_module(request["module"], run_name="__main__", alter_sys=True)
        code = 0
    except SystemExit as exit:
        code = exit_code(exit)
    except BaseException:
        sys.excepthook(*sys.exc_info())
        code = 1
    EXIT.append(code)
    sys.exit(code)  # the interpreter's own exit: non-daemon threads joined, atexit handlers run, then `fast_exit`


def exit_code(exit: SystemExit) -> int:
    """The status the interpreter gives an uncaught SystemExit, printing its message as it does."""
    if exit.code is None or isinstance(exit.code, int):
        return exit.code or 0
    print(exit.code, file=sys.stderr)
    return 1


def fast_exit() -> None:
    """The last atexit handler of a forked run (the first registered): end the process there, without tearing
    down the modules, which took 3.3 s of the 3.8 s of a forked `--cfg job` run on the 2-core test machine (2 s
    after a fresh interpreter's imports), in every run of the suite. The zygote itself exits as usual."""
    if EXIT:
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        os._exit(EXIT[0])


def serve() -> None:
    """Fork one process per request, report its pid at once and its exit status when it ends."""
    atexit.register(fast_exit)  # before any library registers its own: atexit runs the last registered first
    import betavae.data  # the imports every run shares
    import betavae.evaluate
    import betavae.summarize
    import betavae.train  # noqa: F401
    from betavae.base.errors import DataError
    from betavae.base.files import cache_path
    from betavae.data.idx import SYSTEM_DIR, load_split, locate

    with contextlib.suppress(ImportError):  # the tracking extra, where installed: 1.3 s of each MLflow run's imports
        import mlflow  # noqa: F401
    with contextlib.suppress(DataError):  # the files every Fashion-MNIST run reads, decompressed once for all
        files = locate(cache_path("BETAVAE_DATA"), SYSTEM_DIR, download=False)  # (none here: those tests skip)
        for split in ("train", "test"):
            load_split(files, split)
    print("ZYGOTE " + json.dumps({"ready": os.getpid()}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        sys.stdout.flush()
        pid = os.fork()
        if pid == 0:
            child(request)  # ends the child as `python -m` would end it
        print("ZYGOTE " + json.dumps({"pid": pid}), flush=True)
        _, status = os.waitpid(pid, 0)
        print("ZYGOTE " + json.dumps({"returncode": os.waitstatus_to_exitcode(status)}), flush=True)


if __name__ == "__main__":
    serve()
