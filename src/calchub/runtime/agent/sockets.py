"""What the agent uses of the socket module, on that module's C core (`_socket`): socket.py
imports enum and selectors and turns hundreds of constants into enums when it is imported,
a cost every project's start would pay. The checker reads the socket module itself, so the
agent's code is checked against the real interface; the modules a request imports on first
use (copies, Jupyter) use the socket module as it is."""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from socket import AF_UNIX, MSG_DONTWAIT, SOCK_STREAM, recv_fds, send_fds, socket, socketpair
else:
    import _socket
    import array
    from _socket import AF_UNIX, CMSG_LEN, MSG_DONTWAIT, SCM_RIGHTS, SOCK_STREAM, SOL_SOCKET

    class socket(_socket.socket):
        """socket.socket's accept() and `with`."""

        __slots__ = ()

        def __enter__(self):
            return self

        def __exit__(self, *_exc):
            self.close()

        def accept(self):
            fd, address = self._accept()
            return socket(self.family, self.type, self.proto, fileno=fd), address

    def socketpair(family=AF_UNIX, type=SOCK_STREAM, proto=0):
        a, b = _socket.socketpair(family, type, proto)
        return socket(family, type, proto, a.detach()), socket(family, type, proto, b.detach())

    # As socket.py writes them.
    def send_fds(sock, buffers, fds, flags=0, address=None):
        return sock.sendmsg(buffers, [(SOL_SOCKET, SCM_RIGHTS, array.array("i", fds))])

    def recv_fds(sock, bufsize, maxfds, flags=0):
        fds = array.array("i")
        msg, ancdata, flags, addr = sock.recvmsg(bufsize, CMSG_LEN(maxfds * fds.itemsize))
        for level, kind, data in ancdata:
            if level == SOL_SOCKET and kind == SCM_RIGHTS:
                fds.frombytes(data[: len(data) - (len(data) % fds.itemsize)])
        return msg, list(fds), flags, addr


__all__ = [
    "AF_UNIX",
    "MSG_DONTWAIT",
    "SOCK_STREAM",
    "recv_fds",
    "send_fds",
    "socket",
    "socketpair",
]
