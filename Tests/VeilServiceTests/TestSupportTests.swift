import Foundation
import Testing
import VeilCrypto
import VeilTestSupport

/// The shared test helpers the network and process tests stand on (VeilTestSupport): if one
/// of them lied, those tests would pass or fail for the wrong reason.
@Suite struct TestSupportTests {
    @Test func aPortIsNotListenedOnUntilSomeoneListens() async throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        try #require(fd >= 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0  // the kernel's choice
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        }
        try #require(bound == 0)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        let port = Int(UInt16(bigEndian: address.sin_port))
        // Bound but not listening: no connection is accepted.
        #expect(await !waitUntilListening(port: port, timeout: 0.2))
        try #require(listen(fd, 4) == 0)
        #expect(await waitUntilListening(port: port, timeout: 60))
    }

    @Test func eventuallyWaitsForTheConditionAndNoLonger() async throws {
        var calls = 0
        // A day: what is tested is that it polls until the condition holds, not how long a
        // poll takes. (A CI run once held this task back for over 120 s between two 50 ms
        // polls, while other tests kept both cores' cooperative threads busy; the deadline
        // then passed after two calls.) `swift test`'s own timeout bounds a real hang.
        #expect(
            await eventually(timeout: 86_400) {
                calls += 1
                return calls >= 3
            })
        // It returns as soon as the condition holds: it polled exactly until then. (Not timed:
        // the suite runs in parallel on two cores, where 50 ms sleeps may take much longer.)
        #expect(calls == 3)
        #expect(await !eventually(timeout: 0.1) { false })
        struct Boom: Error {}
        await #expect(throws: Boom.self) { _ = try await eventually(timeout: 1) { throw Boom() } }
    }

    @Test func processRunnerCapturesBothStreamsAndTheStatus() async throws {
        let output = try await ProcessRunner.run("/bin/sh", ["-c", "echo out; echo err >&2; exit 3"])
        #expect(output.stdout == "out\n" && output.stderr == "err\n" && output.status == 3)
    }

    @Test func aBackgroundProcessWritesItsFilesAndCanBeKilled() async throws {
        let directory = try RepositoryPaths.temporaryDirectory("veil-process-runner")
        defer { try? FileManager.default.removeItem(at: directory) }
        let quick = try ProcessRunner.start(
            URL(fileURLWithPath: "/bin/sh"), ["-c", "echo hello; echo oops >&2"], in: directory, name: "quick")
        #expect(await quick.wait(timeout: 10))
        #expect(quick.stdout == "hello\n" && quick.stderr == "oops\n")
        // Long enough to outlast any stall of a loaded machine between start and kill (a 30 s
        // sleep once ended on its own while a CI run held the test back for 107 s).
        let slow = try ProcessRunner.start(URL(fileURLWithPath: "/bin/sleep"), ["3600"], in: directory, name: "slow")
        #expect(await !slow.wait(timeout: 0.2))
        slow.kill()
        #expect(!slow.process.isRunning && slow.process.terminationReason == .uncaughtSignal)
    }

    @Test func aLabelledGeneratorIsANamedReproducibleStream() {
        var a = ChaCha20Generator(label: "stats")
        var b = ChaCha20Generator(label: "stats")
        var c = ChaCha20Generator(label: "other")
        let first = (0..<4).map { _ in a.next() }
        #expect(first == (0..<4).map { _ in b.next() })
        #expect(first != (0..<4).map { _ in c.next() })
        // The label is the public seed, zero-padded (and cut) to 32 bytes.
        var explicit = try! ChaCha20Generator(publicSeed: Array("stats".utf8) + [UInt8](repeating: 0, count: 27))
        #expect(first == (0..<4).map { _ in explicit.next() })
        var long = ChaCha20Generator(label: String(repeating: "x", count: 40))
        var cut = ChaCha20Generator(label: String(repeating: "x", count: 32))
        #expect(long.next() == cut.next())
    }
}
