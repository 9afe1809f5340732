"""A minimal WebSocket client (RFC 6455) over TLS, for tests that speak the coordinator's
WebSocket binding (Specs/wire.md §1.1) as a hostile or scripted peer would: the handshake,
masked frames out, frames in. Nothing else; the standard library only."""

import base64
import json
import os
import socket
import ssl
import struct


class Closed(Exception):
    """The server closed the connection; `code` is its close code (None when it just hung up)."""

    def __init__(self, code, reason=""):
        super().__init__("closed with %s %s" % (code, reason))
        self.code = code
        self.reason = reason


class HandshakeRefused(Exception):
    def __init__(self, status_line):
        super().__init__(status_line)
        self.status_line = status_line


class WebSocket:
    def __init__(self, host, port, path="/participate/ws", origin=None, timeout=30):
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # the tests pin nothing here; the browser tests do
        raw = socket.create_connection((host, port), timeout=timeout)
        self.sock = context.wrap_socket(raw, server_hostname="coordinator")
        key = base64.b64encode(os.urandom(16)).decode()
        lines = ["GET %s HTTP/1.1" % path, "Host: %s:%d" % (host, port), "Upgrade: websocket",
                 "Connection: Upgrade", "Sec-WebSocket-Key: %s" % key, "Sec-WebSocket-Version: 13"]
        if origin is not None:
            lines.append("Origin: %s" % origin)
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            if not chunk:
                self.close()
                raise HandshakeRefused("connection closed during the handshake")
            head += chunk
        head, self.buffer = head.split(b"\r\n\r\n", 1)
        self.status_line = head.split(b"\r\n", 1)[0].decode()
        status = head.split(b"\r\n", 1)[0].decode()
        if " 101 " not in status + " ":
            self.close()
            raise HandshakeRefused(status)

    def send_frame(self, opcode, payload, fin=True, masked=True, rsv=0):
        """One frame; `masked=False` and `rsv` (the three reserved bits, 0…7) break RFC 6455 on purpose."""
        header = bytes([(0x80 if fin else 0) | (rsv << 4) | opcode])
        flag = 0x80 if masked else 0
        n = len(payload)
        if n < 126:
            header += bytes([flag | n])
        elif n < 65536:
            header += bytes([flag | 126]) + struct.pack(">H", n)
        else:
            header += bytes([flag | 127]) + struct.pack(">Q", n)
        if not masked:
            self.sock.sendall(header + payload)
            return
        mask = os.urandom(4)
        body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(header + mask + body)

    def send_json(self, obj):
        self.send_frame(1, json.dumps(obj).encode())

    def _read(self, n):
        while len(self.buffer) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise Closed(None)
            self.buffer += chunk
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data

    def receive(self):
        """The next data frame's (opcode, payload); a close frame raises Closed."""
        while True:
            b0, b1 = self._read(2)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack(">H", self._read(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self._read(8))[0]
            payload = self._read(n)
            opcode = b0 & 0x0F
            if opcode == 8:
                code = struct.unpack(">H", payload[:2])[0] if len(payload) >= 2 else None
                raise Closed(code, payload[2:].decode(errors="replace"))
            if opcode in (9, 10):
                continue
            return opcode, payload

    def receive_json(self):
        opcode, payload = self.receive()
        assert opcode == 1, "a binary frame from the coordinator"
        return json.loads(payload)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass
