import sys

try:
    from planner.cli import main
except KeyboardInterrupt:  # Ctrl-C while the modules load: the same one line as later
    sys.stderr.write("planner: aborted\n")
    sys.exit(130)

main()
