"""The console script ``reproduce`` (and ``python -m reproduce``): SIGINT and SIGTERM are taken before the CLI's
imports (seconds), so a stop while it starts is one line and its exit code too, not a traceback; the CLI then takes
them for the command (reproduce/core/errors.py: ``stop_on_signals``); once it is done, they are ignored, and the
interpreter's shutdown skips collecting what is alive then."""

import gc
import signal
import sys

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _starting(signum: int, frame: object) -> None:
    for other in _SIGNALS:
        signal.signal(other, signal.SIG_IGN)
    print(f"stopped: {signal.Signals(signum).name} while starting; nothing was written", file=sys.stderr)
    sys.exit(128 + signum)


def main() -> None:
    before = {signum: signal.signal(signum, _starting) for signum in _SIGNALS
              if signal.getsignal(signum) != signal.SIG_IGN}  # one ignored by our caller stays ignored
    from reproduce.cli import main as cli

    for signum, handler in before.items():  # the launcher's own handlers, for the CLI to pass a signal on to
        signal.signal(signum, handler)
    try:
        cli()
    finally:  # done, its exit code decided: a signal while the interpreter shuts down would end it as killed, no line
        for signum in before:
            signal.signal(signum, signal.SIG_IGN)
        # the interpreter's last collections skip the objects alive now (torch's and Lightning's: about 0.8 s of
        # every exit); every file is closed and renamed already, and the modules are still torn down as before
        gc.freeze()


if __name__ == "__main__":
    main()
