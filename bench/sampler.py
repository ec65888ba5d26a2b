"""A small statistical profiler for a benchmark's server process (py-spy is not installed).

    python bench/sampler.py OUT.json -m omo.cli serve [ARGS]

Runs the module like `python -m`, and every millisecond of the process's CPU time
(ITIMER_PROF) records the main thread's Python stack. At exit it writes the samples as
collapsed stacks (`{"a;b;c": count}`) to OUT.json; `python bench/sampler.py --report OUT.json`
prints the functions with the most samples, by own time and by time including callees.
Sampling on CPU time means an idle server takes no samples: the profile is the claims' cost.
"""

from __future__ import annotations

import atexit
import collections
import json
import runpy
import signal
import sys
from types import FrameType

INTERVAL_S = 0.001


def _label(frame: FrameType) -> str:
    code = frame.f_code
    module = frame.f_globals.get("__name__", "?")
    return f"{module}.{code.co_qualname}"


def start(out: str) -> None:
    stacks: collections.Counter[str] = collections.Counter()

    def sample(_signum: int, frame: FrameType | None) -> None:
        names: list[str] = []
        while frame is not None:
            names.append(_label(frame))
            frame = frame.f_back
        stacks[";".join(reversed(names))] += 1

    def write() -> None:
        signal.setitimer(signal.ITIMER_PROF, 0)
        with open(out, "w") as output:
            json.dump(dict(stacks), output)

    signal.signal(signal.SIGPROF, sample)
    signal.setitimer(signal.ITIMER_PROF, INTERVAL_S, INTERVAL_S)
    atexit.register(write)
    # uvicorn (0.29+) restores the previous SIGTERM handler after its shutdown and raises the
    # signal again: with the default handler the process would die without running atexit.
    signal.signal(signal.SIGTERM, lambda _signum, _frame: sys.exit(0))


def report(path: str, top: int = 45) -> None:
    with open(path) as source:
        stacks: dict[str, int] = json.load(source)
    total = sum(stacks.values())
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    for stack, count in stacks.items():
        names = stack.split(";")
        own[names[-1]] += count
        for name in set(names):
            inclusive[name] += count
    print(f"{total} samples ({total * INTERVAL_S:.1f} CPU-s)")
    print("-- own time")
    for name, count in own.most_common(top):
        print(f"{100 * count / total:5.1f}%  {name}")
    print("-- including callees")
    for name, count in inclusive.most_common(top * 2):
        print(f"{100 * count / total:5.1f}%  {name}")


def main() -> None:
    if sys.argv[1] == "--report":
        report(sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 45)
        return
    out, flag, module, *rest = sys.argv[1:]
    assert flag == "-m", "usage: sampler.py OUT.json -m MODULE [ARGS]"
    start(out)
    sys.argv = [module, *rest]
    # uvicorn stops on SIGTERM by returning normally, so atexit writes the samples.
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
