import os
import signal
import sys

try:
    from .cli import main
    code = main()
except KeyboardInterrupt:
    # Ctrl-C during start-up, before hpcopt's stop handlers exist: end the way the signal's
    # default action would (status 130 in a shell). A plain exit of one rank before MPI has
    # started would leave the other ranks waiting in MPI_Init; a death by signal makes the
    # launcher end them too.
    sys.stderr.write("hpcopt: interrupted during start-up\n")
    sys.stderr.flush()
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGINT)
    code = 130
sys.exit(code)
