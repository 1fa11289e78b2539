# Drive an interactive shell through a real terminal: argv runs with a pty as its stdin/stdout
# (its environment is ours, plus TERM=xterm); once a `# ` prompt shows after the optional
# PTY_AFTER marker, the shell is asked to `echo hi; tty; exit 3`. Prints the exit code on the
# first line, then the transcript.
import os, pty, select, sys, time
argv = sys.argv[1:]
after = os.environ.pop("PTY_AFTER", "").encode()
os.environ["TERM"] = "xterm"
pid, fd = pty.fork()
if pid == 0:
    os.execv(argv[0], argv)
out = b""
def pump(timeout):
    global out
    r, _, _ = select.select([fd], [], [], timeout)
    if not r:
        return False
    try:
        data = os.read(fd, 4096)
    except OSError:
        return None
    if not data:
        return None
    out += data
    return True
def prompt_seen():
    tail = out.split(after)[-1] if after else out
    return b"# " in tail
deadline = time.time() + 10
while not prompt_seen() and time.time() < deadline:
    if pump(0.2) is None:
        break
os.write(fd, b"echo hi; tty; exit 3\n")
while time.time() < deadline + 10:
    if pump(0.5) is None:
        break
_, status = os.waitpid(pid, 0)
sys.stdout.write("%d\n" % os.waitstatus_to_exitcode(status))
sys.stdout.write(out.decode(errors="replace"))
