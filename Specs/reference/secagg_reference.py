"""An independent replay of Veil's masking protocol, written from Specs/secagg.md (section numbers
below are that document's) and Specs/primitives.md.

It implements the participant (§6) and the server (§7, §7.1) as state machines and runs the
simulation of §9 from a vector group's seed alone: identities, inputs, every participant's
generator, the message interleaving. Every message a party produces must equal, byte for byte,
the message at the same transcript index; every message a party receives passes that party's
checks (envelope, signatures, decryption of every share entry, complaint judging, commitments,
survivor digests, consistency signatures, share endorsements, robust reconstruction), and the run's
outcome — the sum, the survivors, the abort reason and the attributions — must equal the vector's. A
separate audit (`audit_shares`) opens every share entry of the transcript with K = c_v·C_u, checks
its signature, its two shares and their owner's endorsements, and that the shares of each owner lie
on one polynomial of degree < t whose secret is the owner's derived b_u / s_u, committed to in its R1
message.

Substitution vectors (§9, "substitution") are run by delivering their bytes in place of message
`index` and requiring the stated party to refuse the last one for the stated reason, or, for a
valid case, to answer with exactly the stated complaints.

Primitives: Ed25519, X25519 and XChaCha20-Poly1305 from PyNaCl; ristretto255 and the proof from
ristretto255.py (plain Python); VeilKDF, the generator, mask expansion and Shamir from
veil_reference.py.
"""

from __future__ import annotations

import collections
import hashlib

import nacl.bindings as sodium

import ristretto255 as rist
import veil_reference as ref

SERVER = 0
SHARE = 45
ENDORSEMENT = 64
SEALED = 2 * SHARE + 2 * ENDORSEMENT  # share of s ‖ share of b ‖ endorsement of each (kind 1, kind 0)
CIPHERTEXT = SEALED + 16  # 234: the XChaCha20-Poly1305 tag
ENTRY = 4 + 32 + 24 + CIPHERTEXT + 64  # recipient/sender ‖ recipient key ‖ nonce ‖ ciphertext ‖ shares signature
REVEAL = 4 + 1 + SHARE + ENDORSEMENT  # owner ‖ kind ‖ share ‖ the owner's endorsement
SEED, MASKING_KEY = 0, 1  # share kinds (§4 share endorsement, §5 UnmaskingShares)


class Abort(ref.Refused):
    """A participant aborts (§6) or the server drops a sender (§7): `code` is the reason."""


def le4(x: int) -> bytes:
    return x.to_bytes(4, "little")


def u32(data: bytes, at: int) -> int:
    return int.from_bytes(data[at:at + 4], "little")


def split_entry(e: bytes) -> tuple[int, bytes, bytes, bytes, bytes]:
    """One R1 entry (§5): (recipient or sender, recipient key, nonce, ciphertext, shares signature)."""
    return u32(e, 0), e[4:36], e[36:60], e[60:60 + CIPHERTEXT], e[60 + CIPHERTEXT:ENTRY]


def bitmap(members, n: int) -> bytes:
    out = bytearray((n + 7) // 8)
    for i in members:
        out[(i - 1) // 8] |= 1 << ((i - 1) % 8)
    return bytes(out)


def read_bitmap(data: bytes, n: int) -> set[int] | None:
    members = {i for i in range(1, 8 * len(data) + 1) if data[(i - 1) // 8] >> ((i - 1) % 8) & 1}
    return None if any(i > n for i in members) else members


def ed25519_verify(public: bytes, message: bytes, signature: bytes) -> bool:
    if len(signature) != 64:
        return False
    try:
        sodium.crypto_sign_open(signature + message, public)
        return True
    except Exception:
        return False


def x25519(private: bytes, public: bytes) -> bytes | None:
    """X25519; None for an all-zero result (a public key of small order)."""
    try:
        out = sodium.crypto_scalarmult(private, public)
    except Exception:
        return None
    return None if out == bytes(32) else out


def small_order(public: bytes) -> bool:
    # A clamped scalar is a multiple of the cofactor 8: a point of small order (on the curve or
    # its twist) gives the all-zero result for every scalar, any other point never does.
    return x25519(bytes([9]) * 32, public) is None


class Session:
    """§3 (session id, neighbour graph) and §9 (what derives from the simulation seed)."""

    def __init__(self, group: dict):
        self.seed = bytes.fromhex(group["seed"])
        self.keys = {SERVER: sodium.crypto_sign_seed_keypair(self.derive("server identity"))}
        for i in range(1, group["clients"] + 1):
            self.keys[i] = sodium.crypto_sign_seed_keypair(self.derive("identity", i))
        adversary = {"honest-but-curious": 0, "malicious": 1}[group["adversary"]]
        self._start(group["clients"], group["threshold"], group["neighbors"], group["bits"], group["dim"], adversary,
                    {i: pk for i, (pk, _) in self.keys.items()}, self.derive("nonce"), self.derive("context"))
        mask = (1 << self.bits) - 1
        self.inputs = {}
        for i in range(1, self.n + 1):
            g = ref.Generator(self.derive("input", i))
            self.inputs[i] = [g.next() & mask for _ in range(self.d)]

    @classmethod
    def announced(cls, n: int, t: int, k: int, bits: int, d: int, adversary: int, identity: dict[int, bytes],
                  nonce: bytes, context: bytes) -> "Session":
        """A session as a coordinator announces it (§3), with public identity keys only: what an
        auditor rebuilds. Messages it encodes carry 64 zero bytes for a signature."""
        session = cls.__new__(cls)
        session.seed, session.keys, session.inputs = None, {}, {}
        session._start(n, t, k, bits, d, adversary, identity, nonce, context)
        return session

    def _start(self, n: int, t: int, k: int, bits: int, d: int, adversary: int, identity: dict[int, bytes],
               nonce: bytes, context: bytes) -> None:
        """§3: the session id from the parameters, nonce, identity keys and context; the graph."""
        self.n, self.t, self.k, self.bits, self.d, self.adversary = n, t, k, bits, d, adversary
        self.width = (self.bits + 7) // 8
        self.identity = identity
        encoding = (b"veil/v1/secagg/session\x00" + nonce + le4(self.n) + le4(self.t) + le4(self.k)
                    + bytes([self.bits]) + le4(self.d) + bytes([self.adversary]) + self.identity[SERVER]
                    + b"".join(self.identity[i] for i in range(1, self.n + 1)) + context)
        self.id = hashlib.sha256(encoding).digest()
        self.ring = list(range(1, self.n + 1))
        if self.k < self.n - 1:
            g = ref.Generator(ref.veil_kdf(self.id, "secagg/graph"))
            for i in range(self.n - 1, 0, -1):
                j = uniform(g, i + 1)
                self.ring[i], self.ring[j] = self.ring[j], self.ring[i]
        self.position = {v: p for p, v in enumerate(self.ring)}
        self._neighbors = {v: self._compute_neighbors(v) for v in range(1, self.n + 1)}

    def derive(self, what: str, i: int = 0) -> bytes:
        return ref.veil_kdf(self.seed, "secagg/simulation", context=what.encode() + le4(i))

    def _compute_neighbors(self, v: int) -> list[int]:
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

    def neighbors(self, v: int) -> list[int]:
        return self._neighbors[v]

    # --- §4 keys and masks ---

    def pair(self, a: int, b: int) -> bytes:
        return le4(min(a, b)) + le4(max(a, b))

    def share_key(self, k_ab: bytes, a: int, b: int) -> bytes:
        return ref.veil_kdf(k_ab, "secagg/share-key", salt=self.id, context=self.pair(a, b))

    def pairwise_mask(self, own_sk: bytes, peer_pk: bytes, a: int, b: int) -> list[int] | None:
        secret = x25519(own_sk, peer_pk)
        if secret is None:
            return None
        seed = ref.veil_kdf(secret, "secagg/pairwise-seed", salt=self.id, context=self.pair(a, b))
        return ref.mask_expansion(seed, b"veil/v1/secagg/pairwise-mask\x00" + self.id, self.bits, self.d)

    def self_mask(self, b: bytes) -> list[int]:
        return ref.mask_expansion(b, b"veil/v1/secagg/self-mask\x00" + self.id, self.bits, self.d)

    def commitment(self, u: int, b: bytes) -> bytes:
        return hashlib.sha256(b"veil/v1/secagg/self-mask-commitment\x00" + self.id + le4(u) + b).digest()

    def survivor_digest(self, u3_bitmap: bytes, d_bitmap: bytes) -> bytes:
        return hashlib.sha256(b"veil/v1/secagg/survivors\x00" + self.id + u3_bitmap + d_bitmap).digest()

    def shares_ad(self, sender: int, recipient: int) -> bytes:
        return b"veil/v1/secagg/shares\x00" + self.id + le4(sender) + le4(recipient)

    def shares_signed(self, sender: int, recipient: int, recipient_key: bytes, nonce: bytes, ciphertext: bytes) -> bytes:
        return (b"veil/v1/secagg/shares-signed\x00" + self.id + le4(sender) + le4(recipient) + recipient_key + nonce
                + ciphertext)

    def endorsement_message(self, owner: int, kind: int, share: bytes) -> bytes:
        return b"veil/v1/secagg/share\x00" + self.id + le4(owner) + bytes([kind]) + share

    def endorse(self, owner: int, kind: int, share: bytes) -> bytes:
        """§4: the owner's endorsement of one share it dealt (kind 0 self-mask seed, 1 masking key)."""
        return sodium.crypto_sign(self.endorsement_message(owner, kind, share), self.keys[owner][1])[:64]

    def endorsed(self, owner: int, kind: int, share: bytes, endorsement: bytes) -> bool:
        return ed25519_verify(self.identity[owner], self.endorsement_message(owner, kind, share), endorsement)

    def possession_context(self, owner: int) -> bytes:
        return b"veil/v1/secagg/key-possession\x00" + self.id + le4(owner)

    def proves_possession(self, owner: int, key: bytes, proof: bytes) -> bool:
        """§4: the R0 proof that owner knows the logarithm of its encryption key (Y = B)."""
        return rist.verify(key, rist.base(1), key, proof, self.possession_context(owner))

    def complaint_context(self, accuser: int, accused: int) -> bytes:
        return b"veil/v1/secagg/complaint\x00" + self.id + le4(accuser) + le4(accused)

    def open_entry(self, k_shared: bytes, sender: int, recipient: int, nonce: bytes, ciphertext: bytes):
        """Opens an entry from sender to recipient with K; (share of s, share of b, endorsement of
        each) if it opens to two shares with index = recipient and a 32-byte secret, each with a
        valid endorsement by the sender (kind 1 for the first, 0 for the second), else None."""
        try:
            plain = sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(
                ciphertext, self.shares_ad(sender, recipient), nonce, self.share_key(k_shared, sender, recipient))
        except Exception:
            return None
        if len(plain) != SEALED:
            return None
        share_s, share_b = plain[:SHARE], plain[SHARE:2 * SHARE]
        endorsement_s, endorsement_b = plain[2 * SHARE:2 * SHARE + ENDORSEMENT], plain[2 * SHARE + ENDORSEMENT:]
        if not (valid_share(share_s, recipient) and valid_share(share_b, recipient)
                and self.endorsed(sender, MASKING_KEY, share_s, endorsement_s)
                and self.endorsed(sender, SEED, share_b, endorsement_b)):
            return None
        return share_s, share_b, endorsement_s, endorsement_b

    # --- §5 envelope ---

    def encode(self, round_: int, sender: int, recipient: int, body: bytes) -> bytes:
        unsigned = b"\x01" + self.id + bytes([round_]) + le4(sender) + le4(recipient) + le4(len(body)) + body
        if sender not in self.keys:  # an announced session: the auditor compares all but the signature
            return unsigned + bytes(64)
        signature = sodium.crypto_sign(b"veil/v1/secagg/message\x00" + unsigned, self.keys[sender][1])[:64]
        return unsigned + signature


def valid_share(share: bytes, index: int) -> bool:
    try:
        x, length, _ = ref.shamir_decode(share)
    except ref.Refused:
        return False
    return x == index and length == 32


def uniform(g: ref.Generator, bound: int) -> int:
    """§3.1: redraw below 2^64 mod bound, then reduce."""
    reject_below = (1 << 64) % bound
    while True:
        v = g.next()
        if v >= reject_below:
            return v % bound


def parse_envelope(raw: bytes) -> dict:
    # §5: an encoding that does not parse (version, round, lengths) is malformed, before any check.
    if len(raw) < 46 + 64 or raw[0] != 1 or raw[33] > 4:
        raise Abort("malformed")
    length = u32(raw, 42)
    if len(raw) != 46 + length + 64:
        raise Abort("malformed")
    return {"session": raw[1:33], "round": raw[33], "sender": u32(raw, 34), "recipient": u32(raw, 38),
            "body": raw[46:46 + length], "signature": raw[46 + length:], "signed": raw[:46 + length], "raw": raw}


def signature_ok(session: Session, m: dict) -> bool:
    key = session.identity.get(m["sender"])
    return key is not None and ed25519_verify(key, b"veil/v1/secagg/message\x00" + m["signed"], m["signature"])


def parse_complaints(body: bytes, d: int, width: int, bits: int):
    """MaskedInput body: (complaints, y); complaints are (accused, kind, K, proof)."""
    if len(body) < 4:
        raise Abort("malformed")
    count, at, complaints = u32(body, 0), 4, []
    for _ in range(count):
        if len(body) < at + 5:
            raise Abort("malformed")
        accused, kind = u32(body, at), body[at + 4]
        at += 5
        if kind == 0:
            complaints.append((accused, "unsigned", None, None))
        elif kind == 1:
            if len(body) < at + 96:
                raise Abort("malformed")
            complaints.append((accused, "undecryptable", body[at:at + 32], body[at + 32:at + 96]))
            at += 96
        else:
            raise Abort("malformed")
    if len(body) != at + d * width:
        raise Abort("malformed")
    y = [int.from_bytes(body[at + width * i:at + width * (i + 1)], "little") for i in range(d)]
    if any(v >> bits for v in y):
        raise Abort("malformed")
    return complaints, y


# --- §6 the participant ---------------------------------------------------------------------------

class Participant:
    def __init__(self, session: Session, u: int):
        self.s, self.u = session, u
        self.generator = ref.Generator(session.derive("generator", u))
        self.state = "advertiseKeys"
        self.abort_reason = None

    def send(self, round_: int, body: bytes) -> bytes:
        return self.s.encode(round_, self.u, SERVER, body)

    def start(self) -> bytes:
        self.c = rist.private_key(self.generator)
        self.s_sk = self.generator.bytes(32)
        self.C = rist.base(self.c)
        self.S = sodium.crypto_scalarmult_base(self.s_sk)
        self.state = "shareKeys"
        _, possession = rist.prove(self.c, rist.base(1), self.s.possession_context(self.u))
        return self.send(0, self.C + self.S + possession)

    def receive(self, raw: bytes) -> bytes | None:
        """Handles one server message: the answer, or None; raises Abort (and stays aborted)."""
        if self.state in ("completed", "aborted", "advertiseKeys"):
            return None
        try:
            m = self.envelope(raw)
            handler = {"shareKeys": self.keys_broadcast, "maskedInputCollection": self.shares_forward,
                       "consistencyCheck": self.survivor_list, "unmasking": self.signatures_forward}[self.state]
            return handler(m["body"])
        except Abort as abort:
            self.state, self.abort_reason = "aborted", abort.code
            raise

    def envelope(self, raw: bytes) -> dict:
        m = parse_envelope(raw)
        expected_round = {"shareKeys": 1, "maskedInputCollection": 2, "consistencyCheck": 3, "unmasking": 4}[self.state]
        if m["session"] != self.s.id:
            raise Abort("wrongSession")
        if m["round"] != expected_round:
            raise Abort("wrongRound")
        if m["sender"] != SERVER:
            raise Abort("wrongSender")
        if m["recipient"] != self.u:
            raise Abort("wrongRecipient")
        if not signature_ok(self.s, m):
            raise Abort("invalidSignature")
        return m

    def keys_broadcast(self, body: bytes) -> bytes:
        s = self.s
        if len(body) < 4:
            raise Abort("malformed")
        count, at, adverts = u32(body, 0), 4, []
        for _ in range(count):
            if len(body) < at + 4 or len(body) < at + 4 + u32(body, at):
                raise Abort("malformed")
            adverts.append(body[at + 4:at + 4 + u32(body, at)])
            at += 4 + u32(body, at)
        if at != len(body):
            raise Abort("malformed")
        neighbors = set(s.neighbors(self.u))
        self.peers = {}  # v → (C_v, S_v)
        for raw in adverts:
            a = parse_envelope(raw)
            if a["session"] != s.id:
                raise Abort("wrongSession")
            if a["round"] != 0:
                raise Abort("wrongRound")
            if a["recipient"] != SERVER:
                raise Abort("wrongRecipient")
            v = a["sender"]
            if v not in neighbors or v in self.peers:
                raise Abort("unexpectedPeer")
            if not signature_ok(s, a):
                raise Abort("invalidSignature")
            if len(a["body"]) != 128 or not rist.is_element(a["body"][:32]):
                raise Abort("malformed")
            if not s.proves_possession(v, a["body"][:32], a["body"][64:]):
                raise Abort("invalidKeyProof")
            self.peers[v] = (a["body"][:32], a["body"][32:64])
        if 1 + len(self.peers) < s.t:
            raise Abort("notEnoughNeighbors")
        # R1 randomness: b_u, the coefficients for s_u, then those for b_u, then one nonce per neighbour.
        self.b = self.generator.bytes(32)
        indices = sorted(set(self.peers) | {self.u})
        shares_s = dict(zip(indices, ref.shamir_split(self.s_sk, s.t, s.n, self.generator, indices)))
        shares_b = dict(zip(indices, ref.shamir_split(self.b, s.t, s.n, self.generator, indices)))
        # Every share endorsed, its own too (Ed25519 is deterministic: no draws).
        endorsed = {v: (shares_s[v], shares_b[v], s.endorse(self.u, MASKING_KEY, shares_s[v]),
                        s.endorse(self.u, SEED, shares_b[v])) for v in indices}
        self.held = {self.u: endorsed[self.u]}  # owner → (share of s, share of b, endorsement of each)
        entries = b""
        for v in sorted(self.peers):
            nonce = self.generator.bytes(24)
            k_uv = s.share_key(rist.agree(self.c, self.peers[v][0]), self.u, v)
            ciphertext = sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(
                b"".join(endorsed[v]), s.shares_ad(self.u, v), nonce, k_uv)
            key_v = self.peers[v][0]
            signature = sodium.crypto_sign(s.shares_signed(self.u, v, key_v, nonce, ciphertext), s.keys[self.u][1])[:64]
            entries += le4(v) + key_v + nonce + ciphertext + signature
        self.state = "maskedInputCollection"
        return self.send(1, s.commitment(self.u, self.b) + le4(len(self.peers)) + entries)

    def shares_forward(self, body: bytes) -> bytes:
        s = self.s
        if len(body) < 4 or len(body) != 4 + ENTRY * u32(body, 0):
            raise Abort("malformed")
        complaints, self.senders, self.accused = b"", set(), set()
        for j in range(u32(body, 0)):
            v, key, nonce, ciphertext, signature = split_entry(body[4 + ENTRY * j:4 + ENTRY * (j + 1)])
            if v not in self.peers or v in self.senders:
                raise Abort("unexpectedPeer")
            self.senders.add(v)
            k_shared = rist.agree(self.c, self.peers[v][0])
            shares = s.open_entry(k_shared, v, self.u, nonce, ciphertext)
            if shares is not None:  # held, endorsements and all
                self.held[v] = shares
                continue
            self.accused.add(v)
            if key == self.C and ed25519_verify(s.identity[v], s.shares_signed(v, self.u, key, nonce, ciphertext),
                                                signature):
                k_proved, proof = rist.prove(self.c, self.peers[v][0], s.complaint_context(self.u, v))
                complaints += le4(v) + b"\x01" + k_proved + proof
            else:
                complaints += le4(v) + b"\x00"
        if len(self.held) < s.t:  # held includes u itself: 1 + held neighbours
            raise Abort("notEnoughNeighbors")
        modulus = 1 << s.bits
        y = list(s.inputs[self.u])
        y = [(a + m) % modulus for a, m in zip(y, s.self_mask(self.b))]
        for v in sorted(self.held):
            if v == self.u:
                continue
            mask = s.pairwise_mask(self.s_sk, self.peers[v][1], self.u, v)
            if mask is None:
                raise Abort("weakPeerKey")
            sign = 1 if self.u < v else -1
            y = [(a + sign * m) % modulus for a, m in zip(y, mask)]
        self.state = "consistencyCheck"
        return self.send(2, le4(len(self.accused)) + complaints
                         + b"".join(v.to_bytes(s.width, "little") for v in y))

    def survivor_list(self, body: bytes) -> bytes:
        s = self.s
        size = (s.n + 7) // 8
        if len(body) != 2 * size:
            raise Abort("malformed")
        u3, dropped = read_bitmap(body[:size], s.n), read_bitmap(body[size:], s.n)
        if u3 is None or dropped is None:
            raise Abort("malformed")
        if u3 & dropped:
            raise Abort("survivorListsOverlap")
        if self.u not in u3:
            raise Abort("listedAsDropped")
        if len(u3) < s.t:
            raise Abort("tooFewSurvivors")
        for v in s.neighbors(self.u):
            listed = (v in u3) + (v in dropped)
            if (v in self.senders and listed != 1) or (v not in self.senders and listed != 0) or (v in self.accused and v in u3):
                raise Abort("inconsistentSurvivorLists")
        if len((set(s.neighbors(self.u)) | {self.u}) & u3) < s.t:
            raise Abort("notEnoughNeighbors")
        self.u3, self.dropped = u3, dropped
        self.digest = s.survivor_digest(body[:size], body[size:])
        self.state = "unmasking"
        return self.send(3, self.digest)

    def signatures_forward(self, body: bytes) -> bytes:
        s = self.s
        if len(body) < 4 or len(body) != 4 + 68 * u32(body, 0):
            raise Abort("malformed")
        signers = set()
        for j in range(u32(body, 0)):
            signer, signature = u32(body, 4 + 68 * j), body[8 + 68 * j:72 + 68 * j]
            if signer == self.u or signer not in self.u3 or signer in signers:
                raise Abort("unexpectedPeer")
            signers.add(signer)
            unsigned = b"\x01" + s.id + bytes([3]) + le4(signer) + le4(SERVER) + le4(32) + self.digest
            if not ed25519_verify(s.identity[signer], b"veil/v1/secagg/message\x00" + unsigned, signature):
                raise Abort("invalidSignature")
        if len(signers) + 1 < s.t:
            raise Abort("notEnoughConsistencySignatures")
        entries = []
        for v in sorted(self.held):  # each share with its owner's endorsement
            share_s, share_b, endorsement_s, endorsement_b = self.held[v]
            entries.append(le4(v) + (bytes([SEED]) + share_b + endorsement_b if v in self.u3
                                     else bytes([MASKING_KEY]) + share_s + endorsement_s))
        self.state = "completed"
        return self.send(4, le4(len(entries)) + b"".join(entries))


# --- §7 the server ----------------------------------------------------------------------------------

class Server:
    def __init__(self, session: Session):
        self.s = session
        self.round = 0
        self.waiting = set(range(1, session.n + 1))
        self.accepted = {}  # this round: participant → what its message gave
        self.dropped = {}  # participant → reason (first)
        self.attributions = []
        self.abort = None
        self.result = None
        self.adverts, self.r1, self.masked, self.accusations = {}, {}, {}, {}
        self.convicted = set()
        self.r3_signatures, self.reveals = {}, {}

    @property
    def done(self) -> bool:
        return self.abort is not None or self.result is not None

    def send(self, recipient: int, body: bytes) -> tuple[int, bytes]:
        return recipient, self.s.encode(self.round, SERVER, recipient, body)

    def drop(self, u: int, reason: str) -> None:
        self.dropped.setdefault(u, reason)
        self.waiting.discard(u)
        self.accepted.pop(u, None)

    def receive(self, raw: bytes, transport: int) -> list:
        """One message from the participant the transport authenticated; the messages produced."""
        if self.done or transport not in self.waiting:
            return []  # ignored: not waited for in this round
        try:
            m = parse_envelope(raw)
            if m["sender"] != transport:
                raise Abort("senderMismatch")
            if m["session"] != self.s.id:
                raise Abort("wrongSession")
            if m["round"] != self.round:
                raise Abort("wrongRound")
            if m["recipient"] != SERVER:
                raise Abort("wrongRecipient")
            if not signature_ok(self.s, m):
                raise Abort("invalidSignature")
            [self.advertise_keys, self.share_keys, self.masked_input, self.consistency, self.unmasking][self.round](transport, m)
            self.waiting.discard(transport)
        except Abort as abort:
            self.drop(transport, abort.code)
        return self.close_round() if not self.waiting else []

    def deadline(self) -> list:
        """closeRound() (§7); nothing once the session has ended."""
        if self.done:
            return []
        for u in sorted(self.waiting):
            self.drop(u, "noResponse")
        return self.close_round()

    # round-specific checks

    def advertise_keys(self, u: int, m: dict) -> None:
        body = m["body"]
        if len(body) != 128 or not rist.is_element(body[:32]):
            raise Abort("malformed")
        if small_order(body[32:64]):
            raise Abort("weakKey")
        if not self.s.proves_possession(u, body[:32], body[64:]):
            raise Abort("invalidKeyProof")
        self.accepted[u] = m
        self.adverts[u] = (body[:32], body[32:64], m["raw"])

    def share_keys(self, u: int, m: dict) -> None:
        body = m["body"]
        if len(body) < 36 or len(body) != 36 + ENTRY * u32(body, 32):
            raise Abort("malformed")
        entries = {}
        order = []
        for j in range(u32(body, 32)):
            v, key, nonce, ciphertext, signature = split_entry(body[36 + ENTRY * j:36 + ENTRY * (j + 1)])
            order.append(v)
            entries[v] = (key, nonce, ciphertext, signature)
        if order != [v for v in self.s.neighbors(u) if v in self.u1]:
            raise Abort("unexpectedShares")
        # §7: each entry sealed to the key its recipient advertised — else u's own signed R1,
        # against v's signed R0, would have v's complaint judged a false report.
        if any(entries[v][0] != self.adverts[v][0] for v in order):
            raise Abort("unexpectedShares")
        self.accepted[u] = m
        self.r1[u] = (body[:32], entries, m["raw"])

    def judge(self, v: int, accused: int, kind: str, k_shared, proof) -> str | None:
        """§7.1: None if the complaint by v about u = accused stands, else the complainer's fault."""
        s, u = self.s, accused
        if u == v or u not in s.neighbors(v) or u not in self.u2 or v not in self.r1[u][1]:
            return "invalidComplaint"
        key, nonce, ciphertext, signature = self.r1[u][1][v]
        if key != self.adverts[v][0]:  # sealed to another key than v's advertisement: nobody's fault proven
            return "falseReport"
        signed = ed25519_verify(s.identity[u], s.shares_signed(u, v, key, nonce, ciphertext), signature)
        if kind == "unsigned":
            return "falseReport" if signed else None
        if not rist.verify(self.adverts[v][0], self.adverts[u][0], k_shared, proof, s.complaint_context(v, u)):
            return "invalidComplaint"
        if not signed:
            return "falseReport"
        return None if s.open_entry(k_shared, u, v, nonce, ciphertext) is None else "falseComplaint"

    def masked_input(self, v: int, m: dict) -> None:
        complaints, y = parse_complaints(m["body"], self.s.d, self.s.width, self.s.bits)
        accused = [c[0] for c in complaints]
        if len(set(accused)) != len(accused):
            twice = next(u for u in accused if accused.count(u) > 1)
            self.attributions.append(f"invalidComplaint:{v}:{twice}")
            raise Abort("invalidComplaint")
        for u, kind, k_shared, proof in complaints:
            fault = self.judge(v, u, kind, k_shared, proof)
            if fault:
                self.attributions.append(f"{fault}:{v}:{u}")
                raise Abort("falseComplaint" if fault == "falseReport" else fault)
        self.accusations[v] = set(accused)
        for u in accused:  # each standing complaint convicts its accused
            if u not in self.convicted:
                self.convicted.add(u)
                self.attributions.append(f"invalidShares:{u}:{v}")
                self.masked.pop(u, None)
                self.drop(u, "convicted")
        self.accepted[v] = m
        self.masked[v] = y

    def consistency(self, u: int, m: dict) -> None:
        if m["body"] != self.digest:
            raise Abort("wrongSurvivorDigest")
        self.accepted[u] = m
        self.r3_signatures[u] = m["signature"]

    def unmasking(self, u: int, m: dict) -> None:
        body, s = m["body"], self.s
        if len(body) < 4 or len(body) != 4 + REVEAL * u32(body, 0):
            raise Abort("malformed")
        owners, reveals, endorsements = [], {}, []
        for j in range(u32(body, 0)):
            e = body[4 + REVEAL * j:4 + REVEAL * (j + 1)]
            v, kind, share, endorsement = u32(e, 0), e[4], e[5:5 + SHARE], e[5 + SHARE:]
            if kind != (SEED if v in self.u3 else MASKING_KEY) or not valid_share(share, u):
                raise Abort("invalidReveal")
            owners.append(v)
            reveals[v] = share
            endorsements.append((v, kind, share, endorsement))
        expected = sorted(({v for v in s.neighbors(u) if v in self.u2} - self.accusations.get(u, set())) | {u})
        if owners != expected:
            raise Abort("invalidReveal")
        # Then each endorsement, in entry order: a share its owner did not endorse is the holder's
        # fault, proven by its own signed R4 message.
        for v, kind, share, endorsement in endorsements:
            if not s.endorsed(v, kind, share, endorsement):
                self.attributions.append(f"wrongShare:{u}:{v}")
                raise Abort("invalidReveal")
        self.accepted[u] = m
        self.reveals[u] = reveals

    # round ends

    def close_round(self) -> list:
        s = self.s
        accepted = set(self.accepted)
        if self.round == 2:
            accepted = set(self.masked) - self.convicted
        self.accepted = {}
        if len(accepted) < s.t:
            self.abort = "tooFewSurvivors"
            return []
        out = []
        if self.round == 0:
            self.u1 = accepted
            self.round = 1
            for u in sorted(accepted):
                ads = [self.adverts[v][2] for v in s.neighbors(u) if v in accepted]
                out.append(self.send(u, le4(len(ads)) + b"".join(le4(len(a)) + a for a in ads)))
        elif self.round == 1:
            self.u2 = accepted
            self.round = 2
            for v in sorted(accepted):
                senders = [u for u in s.neighbors(v) if u in accepted]
                body = le4(len(senders)) + b"".join(le4(u) + b"".join(self.r1[u][1][v]) for u in senders)
                out.append(self.send(v, body))
        elif self.round == 2:
            self.u3 = accepted
            self.d_set = self.u2 - accepted
            self.round = 3
            lists = bitmap(self.u3, s.n) + bitmap(self.d_set, s.n)
            self.digest = s.survivor_digest(lists[:len(lists) // 2], lists[len(lists) // 2:])
            out = [self.send(u, lists) for u in sorted(accepted)]
        elif self.round == 3:
            self.u4 = accepted
            self.round = 4
            for u in sorted(accepted):
                others = sorted(accepted - {u})[:s.t - 1]
                out.append(self.send(u, le4(len(others)) + b"".join(le4(w) + self.r3_signatures[w] for w in others)))
        else:
            self.u5 = accepted
            self.finish()
            return []
        self.waiting = set(accepted)
        return out

    def finish(self) -> None:
        s = self.s
        modulus = 1 << s.bits
        total = [0] * s.d
        for u in self.u3:
            total = [(a + b) % modulus for a, b in zip(total, self.masked[u])]
        try:
            for v in sorted(self.u3):
                b = self.reconstruct(v, lambda secret: s.commitment(v, secret) == self.r1[v][0])
                total = [(a - m) % modulus for a, m in zip(total, s.self_mask(b))]
            for v in sorted(self.d_set):
                masked_with = [w for w in s.neighbors(v) if w in self.u3 and v not in self.accusations.get(w, set())]
                if not masked_with:
                    continue
                s_v = self.reconstruct(v, lambda secret: sodium.crypto_scalarmult_base(secret) == self.adverts[v][1])
                for w in masked_with:
                    mask = s.pairwise_mask(s_v, self.adverts[w][1], v, w)
                    sign = -1 if w < v else 1  # w added Δ_wv·mask: take it away
                    total = [(a + sign * x) % modulus for a, x in zip(total, mask)]
        except Abort as abort:
            self.abort = abort.code
            return
        self.result = (total, sorted(self.u3))

    def reconstruct(self, v: int, check) -> bytes:
        """§7 robust reconstruction of v's secret from the shares revealed for it in R4, every one
        endorsed by v (checked when it arrived): what goes wrong here is v's doing."""
        s = self.s
        shares = [r[v] for _, r in sorted(self.reveals.items()) if v in r]  # ascending holder = index
        if len(shares) < s.t:
            raise Abort("cannotReconstruct")
        try:
            secret = ref.shamir_reconstruct(shares[:s.t], s.t, s.n)
            if check(secret):
                return secret
        except ref.Refused:
            pass
        try:
            secret, wrong = ref.shamir_decode_wrong(shares, s.t, s.n)
        except ref.Refused:
            secret, wrong = None, []
        if secret is None or not check(secret):
            # v's endorsed shares do not give the secret it committed to (§7.1)
            self.attributions.append(f"inconsistentSecret:{v}:{v}")
            raise Abort("reconstructionMismatch")
        if wrong:  # v endorsed shares that do not lie on one polynomial; the round goes on
            self.attributions.append(f"inconsistentSecret:{v}:{v}")
        return secret


# --- §9 the simulation ---------------------------------------------------------------------------

class Stop(Exception):
    pass


class Run:
    """The simulation of §9. `substitute` = (index, bytes) replaces the message produced at that
    index; `trap` stops the run right after the substituted message has been handled."""

    def __init__(self, group: dict, expected: list | None = None, substitute=None, trap: bool = False):
        self.s = Session(group)
        if group.get("dropoutFraction", 0):
            raise AssertionError("random dropouts (dropoutFraction > 0) are not implemented by the reference")
        self.drops = {d["participant"]: d["round"] for d in group.get("drops", [])}
        self.participants = {u: Participant(self.s, u) for u in range(1, self.s.n + 1)}
        self.server = Server(self.s)
        self.messages = []  # (raw, sender, recipient)
        self.expected, self.substitute, self.trap = expected, substitute, trap
        self.queue = collections.deque()
        self.offline = set()
        self.trapped = None
        self.differences = []

    def emit(self, raw: bytes, sender: int, recipient: int) -> bytes:
        """Records a produced message at the next index. With a transcript to compare, a message
        that differs is recorded as a difference and the run goes on with the transcript's bytes,
        so that the recipients' own checks show what the difference does."""
        index = len(self.messages)
        if self.expected is not None:
            if index >= len(self.expected):
                raise AssertionError(self.report(f"the replay produces message {index} ({sender} → {recipient}), "
                                                 "the transcript has ended"))
            e = self.expected[index]
            if (sender, recipient) != (e["sender"], e["recipient"]):
                raise AssertionError(self.report(f"message {index}: the replay's goes {sender} → {recipient}, "
                                                 f"the transcript's {e['sender']} → {e['recipient']}"))
            if raw.hex() != e["message"]:
                theirs = bytes.fromhex(e["message"])
                part = ("length" if len(raw) != len(theirs) else
                        "signature only" if raw[:-64] == theirs[:-64] else
                        "header" if raw[:46] != theirs[:46] else "body")
                self.differences.append(f"message {index} ({sender} → {recipient}, round {raw[33]}) differs from "
                                        f"the replay's ({part})")
                raw = theirs
        if self.substitute and index == self.substitute[0]:
            # A rogue run: the transcript holds the message the party produced, the recipient gets this.
            raw = self.substitute[1]
        self.messages.append((raw, sender, recipient))
        return raw

    def consequences(self) -> list[str]:
        """What the parties' checks did with the run as the transcript has it."""
        out = [f"the server dropped {u}: {r}" for u, r in sorted(self.server.dropped.items()) if r != "noResponse"]
        out += [f"participant {u} aborted: {p.abort_reason}" for u, p in sorted(self.participants.items())
                if p.abort_reason]
        if self.server.abort:
            out.append(f"the server aborted: {self.server.abort}")
        if self.server.attributions:
            out.append(f"attributions {self.server.attributions}")
        return out

    def report(self, last: str | None = None) -> str:
        lines = self.differences + ([last] if last else [])
        text = lines[0] + (f" (and {len(lines) - 1} more)" if len(lines) > 1 else "")
        seen = self.consequences()
        return text + ("; following the transcript: " + ", ".join(seen) if seen else "")

    def deliver(self, produced: list) -> None:
        for recipient, raw in produced:
            index = len(self.messages)
            raw = self.emit(raw, SERVER, recipient)
            trapped = self.trap and index == self.substitute[0]
            round_ = raw[33]
            if recipient in self.offline or self.drops.get(recipient) == round_:
                self.offline.add(recipient)
                reply, error = None, None
            else:
                try:
                    reply, error = self.participants[recipient].receive(raw), None
                except Abort as abort:
                    reply, error = None, abort.code
            if trapped:
                self.trapped = {"party": recipient, "reply": reply, "error": error}
                raise Stop()
            if reply is not None:
                self.emit(reply, recipient, SERVER)
                self.queue.append((len(self.messages) - 1, recipient))

    def run(self) -> "Run":
        try:
            for u in range(1, self.s.n + 1):
                raw = self.participants[u].start()
                if self.drops.get(u) == 0:
                    self.offline.add(u)
                    continue
                self.emit(raw, u, SERVER)
                self.queue.append((len(self.messages) - 1, u))
            while not self.server.done:
                while self.queue and not self.server.done:
                    index, sender = self.queue.popleft()
                    before = dict(self.server.dropped)
                    produced = self.server.receive(self.messages[index][0], sender)
                    if self.trap and self.substitute and index == self.substitute[0]:
                        self.trapped = {"party": SERVER, "drops": {k: v for k, v in self.server.dropped.items()
                                                                    if before.get(k) != v}}
                        raise Stop()
                    self.deliver(produced)
                if not self.server.done:
                    self.deliver(self.server.deadline())
        except Stop:
            pass
        return self


def check_transcript(group: dict, test: dict) -> None:
    """Replays the run from the seed; raises AssertionError naming the first difference."""
    expected = test["transcript"]
    substitute = None
    if "substitutedIndex" in test:
        index, raw = test["substitutedIndex"], bytes.fromhex(test["substitutedMessage"])
        if expected[index]["sender"] == SERVER:
            raise AssertionError("substitutedIndex names a message of the server")
        substitute = (index, raw)
    run = Run(group, expected, substitute).run()
    if run.differences:
        raise AssertionError(run.report())
    if len(run.messages) != len(expected):
        raise AssertionError(f"the replay produces {len(run.messages)} messages, the transcript has {len(expected)}")
    for i, (raw, _, _) in enumerate(run.messages):  # as delivered (a rogue's substitute included)
        m, e = parse_envelope(raw), expected[i]
        if i != (substitute or (None,))[0] and (m["round"], m["sender"], m["recipient"]) != (e["round"], e["sender"], e["recipient"]):
            raise AssertionError(f"message {i}: round, sender or recipient fields")
        if m["session"] != run.s.id or not signature_ok(run.s, m):
            raise AssertionError(f"message {i}: session id or signature")
    server = run.server
    if server.abort != test.get("abort"):
        raise AssertionError(f"abort: the replay gives {server.abort}, the vector {test.get('abort')}")
    if server.attributions != test.get("attributions", []):
        raise AssertionError(f"attributions: the replay gives {server.attributions}, the vector {test.get('attributions', [])}")
    if server.abort is None:
        total, survivors = server.result
        if survivors != test["survivors"]:
            raise AssertionError("survivors")
        if [str(x) for x in total] != test["sum"]:
            raise AssertionError("unmasked sum")
        modulus = 1 << run.s.bits
        plain = [sum(run.s.inputs[u][i] for u in survivors) % modulus for i in range(run.s.d)]
        if total != plain:
            raise AssertionError("the sum is not the sum of the survivors' inputs")
    elif "sum" in test or "survivors" in test:
        raise AssertionError("an aborted run with a sum or survivors")
    audit_shares(run, substitute[0] if substitute else None)


def audit_shares(run: Run, substituted: int | None) -> None:
    """Every R1 entry of the transcript opened with the recipient's key, independently of the
    state machines: its signature, its shares, and the owner's polynomial and commitment."""
    s = run.s
    for index, (raw, sender, _) in enumerate(run.messages):
        if sender == SERVER or raw[33] != 1 or index == substituted:
            continue
        u, p = sender, run.participants[sender]
        body = parse_envelope(raw)["body"]
        if body[:32] != s.commitment(u, p.b):
            raise AssertionError(f"self-mask commitment of {u}")
        shares_s, shares_b = [p.held[u][0]], [p.held[u][1]]
        for j in range(u32(body, 32)):
            v, key, nonce, ciphertext, signature = split_entry(body[36 + ENTRY * j:36 + ENTRY * (j + 1)])
            if key != run.participants[v].C:
                raise AssertionError(f"the shares of {u} for {v} name another key than {v}'s")
            if not ed25519_verify(s.identity[u], s.shares_signed(u, v, key, nonce, ciphertext), signature):
                raise AssertionError(f"shares signature of {u} for {v}")
            k_shared = rist.agree(run.participants[v].c, p.C)  # K = c_v·C_u
            if k_shared != rist.agree(p.c, run.participants[v].C):
                raise AssertionError(f"K of {u} and {v} differs from its two ends")
            opened = s.open_entry(k_shared, u, v, nonce, ciphertext)
            if opened is None:
                raise AssertionError(f"the shares of {u} for {v} do not open to two shares at index {v} "
                                     f"endorsed by {u}")
            shares_s.append(opened[0])
            shares_b.append(opened[1])
        for name, shares, secret in (("s", shares_s, p.s_sk), ("b", shares_b, p.b)):
            if len(shares) >= s.t:
                decoded, wrong = ref.shamir_decode_wrong(shares, s.t, s.n)
                if wrong or decoded != secret:
                    raise AssertionError(f"the shares of {name}_{u} do not lie on one polynomial with its secret")


def check_substitution(group: dict, test: dict) -> None:
    """Delivers the substitution's bytes in place of message `index` of the base run; the stated
    party must refuse the last delivery with `error` (the server dropping `dropped`), or, for a
    valid case, answer it with exactly `complaints`. Raises Abort (refused) or AssertionError."""
    deliveries = [bytes.fromhex(x) for x in test["deliveries"]]
    run = Run(group, None, (test["index"], deliveries[0]), trap=True).run()
    trapped = run.trapped
    if trapped is None:
        raise AssertionError(f"the base run never reaches message {test['index']}")
    party = test["party"]
    if trapped["party"] != party:
        raise AssertionError(f"message {test['index']} goes to party {trapped['party']}, the case names {party}")
    if party == SERVER:
        if len(deliveries) != 1:
            raise AssertionError("more than one delivery to the server")
        drops = trapped["drops"]
        if not drops:
            return  # accepted: check_vectors.outcome() fails an invalid case that returns
        if test["result"] == "valid":
            raise AssertionError(f"the server dropped {drops}")
        (who, reason), = [(w, r) for w, r in drops.items() if r != "convicted"] or list(drops.items())
        if who != test.get("dropped"):
            raise AssertionError(f"the server dropped {who} ({reason}), the case names {test.get('dropped')}")
        raise Abort(reason)
    participant = run.participants[party]
    reply, error = trapped["reply"], trapped["error"]
    for raw in deliveries[1:]:
        if error is not None:
            raise AssertionError(f"participant {party} refused an earlier delivery: {error}")
        if reply is None:
            raise AssertionError(f"participant {party} did not answer an earlier delivery")
        try:
            reply, error = participant.receive(raw), None
        except Abort as abort:
            reply, error = None, abort.code
    if error is not None:
        raise Abort(error)
    if test["result"] == "invalid":
        return  # accepted: check_vectors.outcome() fails an invalid case that returns
    if reply is None:
        raise AssertionError(f"participant {party} did not answer")
    m = parse_envelope(reply)
    if m["round"] != 2:
        raise AssertionError(f"the answer is a round-{m['round']} message; complaints travel in MaskedInput (round 2)")
    complaints, _ = parse_complaints(m["body"], run.s.d, run.s.width, run.s.bits)
    got = [f"{u}:{kind}" for u, kind, _, _ in complaints]
    if got != test.get("complaints", []):
        raise AssertionError(f"complaints {got}, expected {test.get('complaints', [])}")
    # An undecryptable complaint's proof must verify (§7.1 step 3) with the complainer's and the accused's keys.
    for u, kind, k_shared, proof in complaints:
        if kind == "undecryptable" and not rist.verify(participant.C, participant.peers[u][0], k_shared, proof,
                                                       run.s.complaint_context(party, u)):
            raise AssertionError(f"the proof of the complaint about {u} does not verify")
