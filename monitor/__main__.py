"""`python -m monitor` and the `monitor` command.

The command line is loaded here, so that a Ctrl-C while it loads (its imports take most of a
second) exits 130 without a traceback.
"""


def main() -> None:
    try:
        from monitor.cli import main as run
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    run()


if __name__ == "__main__":
    main()
