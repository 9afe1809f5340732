"""An independent check of Veil's masking protocol transcripts, written from Specs/secagg.md.

From a transcript and the simulation seed it re-derives every identity, input and secret,
verifies every signature, and recomputes, with its own Shamir, KDF and ChaCha20 (from
veil_reference) and PyNaCl's X25519 and Ed25519:

- each masked input:  y_u = x_u + PRG(b_u) + Σ_{v ∈ U2(u)} ±PRG(s_uv)  (mod 2^b);
- the unmasking:      Σ_{u ∈ U3} y_u − Σ_{u ∈ U3} PRG(b_u) ∓ Σ_{v ∈ D, w ∈ N(v) ∩ U3} PRG(s_vw) = Σ_{u ∈ U3} x_u,
  with b_u and s_v reconstructed from the shares revealed in R4.
"""

from __future__ import annotations

import hashlib

import nacl.bindings as sodium

import veil_reference as ref

SERVER = 0


def le4(x: int) -> bytes:
    return x.to_bytes(4, "little")


class Session:
    """Section "Simulation" and "Session" of Specs/secagg.md."""

    def __init__(self, group: dict):
        self.n, self.t, self.k = group["clients"], group["threshold"], group["neighbors"]
        self.bits, self.d = group["bits"], group["dim"]
        self.adversary = {"honest-but-curious": 0, "malicious": 1}[group["adversary"]]
        seed = bytes.fromhex(group["seed"])

        def derive(what: str, i: int = 0) -> bytes:
            return ref.veil_kdf(seed, "secagg/simulation", context=what.encode() + le4(i))

        self.server_pk, _ = sodium.crypto_sign_seed_keypair(derive("server identity"))
        self.identity = {i: sodium.crypto_sign_seed_keypair(derive("identity", i))[0] for i in range(1, self.n + 1)}
        self.identity[SERVER] = self.server_pk
        mask = (1 << self.bits) - 1
        self.inputs = {}
        for i in range(1, self.n + 1):
            g = ref.Generator(derive("input", i))
            self.inputs[i] = [g.next() & mask for _ in range(self.d)]
        # Each participant's generator: encryption key, masking key (R0), then the self-mask seed (R1).
        self.secrets = {}
        for i in range(1, self.n + 1):
            g = ref.Generator(derive("generator", i))
            c_sk, s_sk, b = g.bytes(32), g.bytes(32), g.bytes(32)
            self.secrets[i] = {"c_sk": c_sk, "s_sk": s_sk, "b": b}
        nonce = derive("nonce")
        encoding = (b"veil/v1/secagg/session\x00" + nonce + le4(self.n) + le4(self.t) + le4(self.k)
                    + bytes([self.bits]) + le4(self.d) + bytes([self.adversary]) + self.server_pk
                    + b"".join(self.identity[i] for i in range(1, self.n + 1)) + derive("context"))
        self.id = hashlib.sha256(encoding).digest()
        self.ring = list(range(1, self.n + 1))
        if self.k < self.n - 1:
            g = ref.Generator(ref.veil_kdf(self.id, "secagg/graph"))
            for i in range(self.n - 1, 0, -1):
                j = uniform(g, i + 1)
                self.ring[i], self.ring[j] = self.ring[j], self.ring[i]
        self.position = {v: p for p, v in enumerate(self.ring)}

    def neighbors(self, v: int) -> list[int]:
        if self.k == self.n - 1:
            return [u for u in range(1, self.n + 1) if u != v]
        p, n = self.position[v], self.n
        out = set()
        for off in range(1, self.k // 2 + 1):
            out.add(self.ring[(p + off) % n])
            out.add(self.ring[(p - off) % n])
        if self.k % 2 == 1:
            out.add(self.ring[(p + n // 2) % n])
        return sorted(out)

    def pair_context(self, a: int, b: int) -> bytes:
        return le4(min(a, b)) + le4(max(a, b))

    def pairwise_mask(self, own_sk: bytes, peer_pk: bytes, a: int, b: int) -> list[int]:
        secret = sodium.crypto_scalarmult(own_sk, peer_pk)
        seed = ref.veil_kdf(secret, "secagg/pairwise-seed", salt=self.id, context=self.pair_context(a, b))
        return ref.mask_expansion(seed, b"veil/v1/secagg/pairwise-mask\x00" + self.id, self.bits, self.d)

    def self_mask(self, b: bytes) -> list[int]:
        return ref.mask_expansion(b, b"veil/v1/secagg/self-mask\x00" + self.id, self.bits, self.d)


def uniform(g: ref.Generator, bound: int) -> int:
    """Specs/secagg.md: redraw below 2^64 mod bound, then reduce."""
    reject_below = (1 << 64) % bound
    while True:
        v = g.next()
        if v >= reject_below:
            return v % bound


def parse_envelope(raw: bytes) -> dict:
    assert raw[0] == 1, "version"
    length = int.from_bytes(raw[42:46], "little")
    body = raw[46:46 + length]
    assert len(raw) == 46 + length + 64, "length"
    return {"session": raw[1:33], "round": raw[33], "sender": int.from_bytes(raw[34:38], "little"),
            "recipient": int.from_bytes(raw[38:42], "little"), "body": body, "signature": raw[46 + length:],
            "signed": raw[:46 + length]}


def verify(session: Session, m: dict) -> None:
    try:
        sodium.crypto_sign_open(m["signature"] + b"veil/v1/secagg/message\x00" + m["signed"], session.identity[m["sender"]])
    except Exception:
        raise AssertionError(f"signature of party {m['sender']} in round {m['round']}")


def bitmap(data: bytes, n: int) -> set[int]:
    return {i for i in range(1, n + 1) if data[(i - 1) // 8] >> ((i - 1) % 8) & 1}


def check_transcript(group: dict, test: dict) -> None:
    """Raises AssertionError naming the first difference."""
    s = Session(group)
    modulus = 1 << s.bits
    messages = [parse_envelope(bytes.fromhex(e["message"])) for e in test["transcript"]]
    advertised, forwards, masked, lists, reveals = {}, {}, {}, None, {}
    for m, e in zip(messages, test["transcript"]):
        assert m["session"] == s.id, "session id"
        assert (m["round"], m["sender"], m["recipient"]) == (e["round"], e["sender"], e["recipient"]), "header"
        verify(s, m)
        r, body = m["round"], m["body"]
        if m["sender"] != SERVER:
            if r == 0:
                advertised[m["sender"]] = (body[:32], body[32:64])
            elif r == 2:
                w = (s.bits + 7) // 8
                masked[m["sender"]] = [int.from_bytes(body[w * i:w * i + w], "little") for i in range(s.d)]
            elif r == 4:
                count = int.from_bytes(body[:4], "little")
                for j in range(count):
                    entry = body[4 + 50 * j:4 + 50 * (j + 1)]
                    owner, kind, share = int.from_bytes(entry[:4], "little"), entry[4], entry[5:]
                    reveals.setdefault((owner, kind), []).append(share)
        else:
            if r == 2:
                count = int.from_bytes(body[:4], "little")
                forwards[m["recipient"]] = {int.from_bytes(body[4 + 134 * j:8 + 134 * j], "little") for j in range(count)}
            elif r == 3:
                size = (s.n + 7) // 8
                lists = (bitmap(body[:size], s.n), bitmap(body[size:], s.n))

    # R0: the advertised keys are the generator's.
    for u, (c_pk, s_pk) in advertised.items():
        assert c_pk == sodium.crypto_scalarmult_base(s.secrets[u]["c_sk"]), f"encryption key of {u}"
        assert s_pk == sodium.crypto_scalarmult_base(s.secrets[u]["s_sk"]), f"masking key of {u}"

    # R2: every masked input, from the participant's own view of who sent it shares.
    for u, y in masked.items():
        expected = list(s.inputs[u])
        for masks, sign in [(s.self_mask(s.secrets[u]["b"]), 1)] + [
            (s.pairwise_mask(s.secrets[u]["s_sk"], advertised[v][1], u, v), 1 if u < v else -1)
            for v in sorted(forwards.get(u, set()))
        ]:
            expected = [(a + sign * m) % modulus for a, m in zip(expected, masks)]
        assert y == expected, f"masked input of {u}"

    if test.get("abort"):
        return
    survivors, dropped = lists
    assert sorted(survivors) == test["survivors"], "survivors"

    # R4: reconstruct from the revealed shares, check against the generator's secrets, unmask.
    total = [0] * s.d
    for u in survivors:
        total = [(a + b) % modulus for a, b in zip(total, masked[u])]
    for u in sorted(survivors):
        b = ref.shamir_reconstruct(reveals[(u, 0)], s.t, s.n)
        assert b == s.secrets[u]["b"], f"reconstructed self-mask seed of {u}"
        total = [(a - m) % modulus for a, m in zip(total, s.self_mask(b))]
    for v in sorted(dropped):
        s_sk = ref.shamir_reconstruct(reveals[(v, 1)], s.t, s.n)
        assert s_sk == s.secrets[v]["s_sk"], f"reconstructed masking key of {v}"
        for w in s.neighbors(v):
            if w in survivors:
                mask = s.pairwise_mask(s_sk, advertised[w][1], v, w)
                sign = -1 if w < v else 1  # w added its mask if its id is lower: take it away
                total = [(a + sign * m) % modulus for a, m in zip(total, mask)]
    assert [str(x) for x in total] == test["sum"], "unmasked sum"
    plain = [sum(s.inputs[u][i] for u in survivors) % modulus for i in range(s.d)]
    assert total == plain, "sum of the survivors' inputs"
