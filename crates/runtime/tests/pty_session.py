# Drive a login shell through a real terminal: the driver (argv[1]) runs with a pty as its
# stdin/stdout, the shell is asked to `echo hi; tty; exit 3`; prints the exit code, then the
# transcript.
import os, pty, select, sys, time
exe, request = sys.argv[1], sys.argv[2]
env = dict(os.environ, CD_RUNTIME_DRIVER=request, TERM="xterm")
pid, fd = pty.fork()
if pid == 0:
    os.execve(exe, [exe, "driver", "--exact", "--nocapture", "--test-threads=1"], env)
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
deadline = time.time() + 10
while b"# " not in out.split(b"@@cd-runtime-driver@@")[-1] and time.time() < deadline:
    if pump(0.2) is None:
        break
os.write(fd, b"echo hi; tty; exit 3\n")
while time.time() < deadline + 10:
    if pump(0.5) is None:
        break
_, status = os.waitpid(pid, 0)
sys.stdout.write("%d\n" % os.waitstatus_to_exitcode(status))
sys.stdout.write(out.decode(errors="replace"))
