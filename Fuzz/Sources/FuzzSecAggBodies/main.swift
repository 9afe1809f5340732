import Foundation
import FuzzSupport
import VeilCore
import VeilCrypto

@testable import VeilSecAgg

// The SecAgg wire format (`Specs/secagg.md`, "Messages"): the signed envelope and every message
// body, decoded on their own (every accepted input must be the canonical encoding of what it
// decodes to), and delivered, validly signed, to the client and the server state machines at
// each protocol round — a body from a peer that holds its key reaches every check behind the
// signature.
//
// Input: one selector byte, then the bytes under test.
//   0…8   a decoder: envelope, AdvertiseKeys, KeysBroadcast, ShareKeys, SharesForward, masked
//         input (2 more header bytes: bit width, dimension), SurvivorList (1 byte: n),
//         SignaturesForward, UnmaskingShares
//   9…13  participant 1 receives a server body of round R(selector − 9), signed by the server
//   14…18 the server receives participant 1's body of round R(selector − 14), signed by it
//   19    the server receives the bytes as participant 1's encoded message, unsigned

/// A session of four (t = 3) driven honestly up to each round, kept at the moment participant 1
/// is about to receive the server's message and the server is about to receive participant 1's.
struct Stages {
    struct ClientStage {
        var client: SecAggClient<ChaCha20Generator>
        var message: SignedMessage
    }
    struct ServerStage {
        var server: SecAggServer
        var message: SignedMessage
    }
    let cast: SecAggSimulation.Cast
    var clientStages: [ClientStage] = []
    var serverStages: [ServerStage] = []

    init() throws {
        let parameters = try SecAggParameters(
            clientCount: 4, threshold: 3, neighborCount: 3, bitWidth: BitWidth(32), dimension: 8,
            threatModel: ThreatModel(adversary: .honestButCuriousServer, corruptFraction: 0, dropoutFraction: 0))
        cast = try SecAggSimulation.Cast(parameters: parameters, seed: [UInt8](repeating: 9, count: 32))
        var server = try SecAggServer(session: cast.session, identityKey: cast.serverKey)
        var clients = try (0..<4).map { i in
            try SecAggClient(
                session: cast.session, id: ParticipantID(UInt32(i + 1)), identityKey: cast.clientKeys[i],
                input: cast.inputs[i], generator: ChaCha20Generator(seed: cast.generatorSeeds[i]))
        }
        var replies = try clients.indices.map { i in try Self.sent(clients[i].start()) }
        while true {
            // Participant 1 last, so that its message is the one that completes the round.
            var actions: [ServerAction] = []
            for i in [1, 2, 3] { actions += server.receive(replies[i], from: ParticipantID(UInt32(i + 1))) }
            serverStages.append(ServerStage(server: server, message: replies[0]))
            actions += server.receive(replies[0], from: ParticipantID(1))
            let toClients = actions.compactMap { action -> SignedMessage? in
                if case .send(let m) = action { m } else { nil }
            }
            guard toClients.count == 4 else { break }  // R4 answered: the sum is out
            let ordered = toClients.sorted { $0.recipient < $1.recipient }
            clientStages.append(ClientStage(client: clients[0], message: ordered[0]))
            replies = try clients.indices.map { i in try Self.sent(clients[i].handle(ordered[i])) }
        }
        guard clientStages.count == 4, serverStages.count == 5 else {
            violated(
                "the honest session did not run: \(clientStages.count) client, \(serverStages.count) server stages")
        }
    }

    static func sent(_ action: ClientAction) throws -> SignedMessage {
        guard case .send(let message) = action else { violated("honest participant did not answer: \(action)") }
        return message
    }
}

nonisolated(unsafe) let stages = try! Stages()  // a fixed honest session; its failure is a bug to report

/// A decoder that accepts must have been given the canonical encoding of what it returned.
func canonical(_ what: String, _ input: [UInt8], _ decode: () throws -> [UInt8]?) {
    guard let encoded = try? decode() else { return }
    if encoded != input { violated("\(what): accepted a non-canonical encoding") }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard let (selector, body) = split(bytes(data, size)) else { return 0 }
    switch selector % 20 {
    case 0:
        canonical("SignedMessage", body) { try SignedMessage(encoded: body).encoded }
    case 1:
        canonical("AdvertiseKeys", body) { try AdvertiseKeysBody(decoding: body).encoded }
    case 2:
        canonical("KeysBroadcast", body) { try KeysBroadcastBody(decoding: body).encoded }
    case 3:
        canonical("ShareKeys", body) { try ShareKeysBody(decoding: body).encoded }
    case 4:
        canonical("SharesForward", body) { try SharesForwardBody(decoding: body).encoded }
    case 5:
        guard body.count >= 2, let width = try? BitWidth(Int(body[0] % 64) + 1) else { return 0 }
        let vector = Array(body.dropFirst(2))
        canonical("MaskedInput", vector) {
            MaskedInputBody.encode(try MaskedInputBody.decode(vector[...], bitWidth: width, dimension: Int(body[1])))
        }
    case 6:
        guard let count = body.first else { return 0 }
        let bitmaps = Array(body.dropFirst())
        canonical("SurvivorList", bitmaps) {
            try SurvivorListBody(decoding: bitmaps, clientCount: Int(count)).encoded
        }
    case 7:
        canonical("SignaturesForward", body) { try SignaturesForwardBody(decoding: body).encoded }
    case 8:
        canonical("UnmaskingShares", body) { try UnmaskingSharesBody(decoding: body).encoded }
    case let s where s < 14:
        var stage = stages.clientStages[Int(s - 9) % stages.clientStages.count]
        let message = SecAggForgery.resigned(stage.message, body: body, by: stages.cast.serverKey)
        _ = stage.client.handle(message)
        _ = stage.client.handle(message)  // a repeat must be harmless too
    case let s where s < 19:
        var stage = stages.serverStages[Int(s - 14)]
        let message = SecAggForgery.resigned(stage.message, body: body, by: stages.cast.clientKeys[0])
        _ = stage.server.receive(message, from: ParticipantID(1))
        _ = stage.server.closeRound()
    default:
        var stage = stages.serverStages[Int(body.first ?? 0) % stages.serverStages.count]
        _ = stage.server.receive(encoded: body, from: ParticipantID(1))
        _ = stage.server.closeRound()
    }
    return 0
}

/// Builds the fixture before the first input, and with `FUZZ_WRITE_SEEDS=DIR` writes the honest
/// session's messages there as seed inputs (one per mode) and exits.
@_cdecl("LLVMFuzzerInitialize")
public func initialize(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>
) -> CInt {
    guard let directory = ProcessInfo.processInfo.environment["FUZZ_WRITE_SEEDS"] else {
        _ = stages.clientStages.count
        return 0
    }
    var seeds: [(String, [UInt8])] = []
    // Server → participant bodies in rounds R1…R4, participant → server bodies in R0…R4.
    let toClient = stages.clientStages.map(\.message)
    let toServer = stages.serverStages.map(\.message)
    for (i, m) in toClient.enumerated() { seeds.append(("client-R\(i + 1)", [UInt8(9 + i)] + m.body)) }
    for (i, m) in toServer.enumerated() { seeds.append(("server-R\(i)", [UInt8(14 + i)] + m.body)) }
    for m in toClient + toServer { seeds.append(("envelope-\(m.round.rawValue)-\(m.sender)", [0] + m.encoded)) }
    seeds.append(("server-encoded", [19] + toServer[0].encoded))
    seeds.append(("AdvertiseKeys", [1] + toServer[0].body))
    seeds.append(("KeysBroadcast", [2] + toClient[0].body))
    seeds.append(("ShareKeys", [3] + toServer[1].body))
    seeds.append(("SharesForward", [4] + toClient[1].body))
    seeds.append(("MaskedInput", [5, 31, 8] + toServer[2].body))
    seeds.append(("SurvivorList", [6, 4] + toClient[2].body))
    seeds.append(("SignaturesForward", [7] + toClient[3].body))
    seeds.append(("UnmaskingShares", [8] + toServer[4].body))
    for (name, bytes) in seeds {
        _ = FileManager.default.createFile(atPath: "\(directory)/\(name)", contents: Data(bytes))
    }
    exit(0)
}
