#!/bin/sh
# Runs a command (nats-server, for `orderflow start`) for as long as the process that started us
# lives. nats-server is not a Node process, so it cannot be told through an IPC channel that its
# parent died, and Linux's prctl(PR_SET_PDEATHSIG) is out of Node's reach. What works everywhere:
# our stdin is a pipe from the parent that nobody writes to. When the parent exits, however it
# exits (SIGKILL included), the kernel closes the pipe's other end and `read` sees end of file;
# then we stop the command with SIGTERM (a clean JetStream shutdown). SIGTERM/SIGHUP sent to us are
# passed on. SIGINT is not: Ctrl-C in a terminal reaches the whole process group, and NATS must
# outlive the workers' drain; the parent stops us (SIGTERM) once they are done. So we ignore it,
# and the command runs in a session of its own (setsid), out of the terminal's reach (nats-server
# would catch a SIGINT even if we left it ignored). We exit with the command's status.
setsid "$@" </dev/null &
child=$!
trap 'kill -TERM "$child" 2>/dev/null' TERM HUP
trap '' INT
exec 3<&0
( while read -r _ <&3; do :; done; kill -TERM "$child" 2>/dev/null ) &
watcher=$!
exec 3<&-
status=0
while kill -0 "$child" 2>/dev/null; do
  wait "$child"
  status=$?
done
kill "$watcher" 2>/dev/null
exit "$status"
