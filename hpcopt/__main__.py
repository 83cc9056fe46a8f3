try:
    # every statement inside the try: a Ctrl-C at the very start lands on the first one
    # that takes time (seen: `import signal`, which reads files), and hpcopt shows no traceback
    import os
    import signal
    import sys

    from .cli import main
    code = main()
except KeyboardInterrupt:
    # Ctrl-C during start-up, before hpcopt's stop handlers exist: end the way the signal's
    # default action would (status 130 in a shell). A plain exit of one rank before MPI has
    # started would leave the other ranks waiting in MPI_Init; a death by signal makes the
    # launcher end them too.
    import os
    import signal
    import sys

    sys.stderr.write("hpcopt: interrupted during start-up\n")
    sys.stderr.flush()
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGINT)
    code = 130
raise SystemExit(code)
