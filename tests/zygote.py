"""`python -m tests.zygote`: runs `python -m <module> <args>` for the tests in processes forked from this one,
which has already imported torch, Lightning, Hydra and betavae.

Each run is a new process with its own arguments, working directory, stdin, stdout, stderr and exit status,
running the entry point as `python -m` does (runpy, `__main__`, an uncaught SystemExit or exception ends it
the interpreter's way). What it saves is the interpreter start: importing Lightning (torchmetrics, torchvision,
torch._dynamo, scipy) took 10-12 s of the 14 s of a one-epoch job on the 2-core test machine, for each of the
suite's ~100 runs. Lines on stdout are the protocol: one JSON request per line in, `ZYGOTE {...}` lines out.
"""

from __future__ import annotations

import json
import os
import runpy
import sys


def child(request: dict) -> None:
    """In the forked process: take the request's directory and files, then run the module as __main__."""
    os.chdir(request["cwd"])
    for fd, path, flags in ((0, os.devnull, os.O_RDONLY), (1, request["stdout"], os.O_WRONLY | os.O_TRUNC),
                            (2, request["stderr"], os.O_WRONLY | os.O_TRUNC)):  # fmt: skip
        target = os.open(path, flags | (os.O_CREAT if fd else 0), 0o644)
        os.dup2(target, fd)
        os.close(target)
    sys.argv = [request["module"], *request["args"]]
    runpy.run_module(request["module"], run_name="__main__", alter_sys=True)


def serve() -> None:
    """Fork one process per request, report its pid at once and its exit status when it ends."""
    import betavae.data  # the imports every run shares
    import betavae.evaluate
    import betavae.summarize
    import betavae.train  # noqa: F401

    print("ZYGOTE " + json.dumps({"ready": os.getpid()}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        sys.stdout.flush()
        pid = os.fork()
        if pid == 0:
            child(request)
            return  # the child ends as `python -m` would: by falling off the end, or by its SystemExit
        print("ZYGOTE " + json.dumps({"pid": pid}), flush=True)
        _, status = os.waitpid(pid, 0)
        print("ZYGOTE " + json.dumps({"returncode": os.waitstatus_to_exitcode(status)}), flush=True)


if __name__ == "__main__":
    serve()
