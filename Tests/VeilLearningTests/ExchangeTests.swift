import Foundation
import Testing
import VeilCore
import VeilTestSupport

@testable import VeilLearning

/// The `.npy` files and the tensor schema of the trainer exchange (`Specs/trainer.md` §2, §3).
@Suite struct ExchangeTests {
    @Test func theSchemaNamesTheDenseLayersInTheirFlatOrder() throws {
        let softmax = TensorSchema(model: SoftmaxRegression(featureCount: 64, classCount: 10))
        #expect(
            softmax.tensors == [
                TensorSpec(name: "layers.0.weight", shape: [10, 64]), TensorSpec(name: "layers.0.bias", shape: [10]),
            ])
        #expect(softmax.count == SoftmaxRegression(featureCount: 64, classCount: 10).parameterCount)
        let mlp = MultilayerPerceptron(layerSizes: [4, 3, 2])
        let schema = TensorSchema(model: mlp)
        #expect(schema.tensors.map(\.name) == ["layers.0.weight", "layers.0.bias", "layers.1.weight", "layers.1.bias"])
        #expect(schema.tensors.map(\.shape) == [[3, 4], [3], [2, 3], [2]])
        #expect(schema.count == mlp.parameterCount)
        // The split follows DenseLayers' offsets: layer 1's weights start after layer 0's biases.
        let flat = (0..<mlp.parameterCount).map(Double.init)
        let parts = schema.split(flat)
        #expect(parts[2].first == Double(DenseLayers(mlp).offsets(1).weights))
        #expect(parts[1] == [12, 13, 14] && parts.joined().elementsEqual(flat))
    }

    @Test func numpyFilesRoundTripAndMatchNumPysOwnHeader() throws {
        for shape in [[], [0], [1], [3], [2, 3], [2, 1, 3]] {
            let count = shape.reduce(1, *)
            let array = NumpyArray(shape: shape, values: (0..<count).map { Double($0) * 0.5 - 1 })
            let bytes = array.encoded
            #expect(try NumpyArray(decoding: bytes) == array)
            // NumPy's layout: the data starts at a multiple of 64, the header ends in a newline.
            let headerEnd = 10 + Int(bytes[8]) + Int(bytes[9]) << 8
            #expect(headerEnd % 64 == 0 && bytes[headerEnd - 1] == 0x0A)
        }
        let header = String(decoding: NumpyArray(shape: [3], values: [1, 2, 3]).encoded[10..<128], as: UTF8.self)
        #expect(header.hasPrefix("{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }"))
    }

    /// Fortran order: numpy.save of a transposed array stores it first index fastest.
    @Test func fortranOrderAndFloat32AreReadInCOrder() throws {
        // A 2 × 3 array [[1, 2, 3], [4, 5, 6]] stored column by column, as float32.
        let values: [Float] = [1, 4, 2, 5, 3, 6]
        var header = "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }"
        header += String(repeating: " ", count: 64 - (10 + header.utf8.count + 1) % 64) + "\n"
        var bytes: [UInt8] = [0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(header.utf8.count), 0] + Array(header.utf8)
        for v in values { withUnsafeBytes(of: v.bitPattern.littleEndian) { bytes += $0 } }
        let array = try NumpyArray(decoding: bytes)
        #expect(array.shape == [2, 3] && array.values == [1, 2, 3, 4, 5, 6])
        // Three axes: the C index (i, j, k) is the Fortran offset i + 2j + 4k.
        let fortran = (0..<8).map(Double.init)
        let c = NumpyArray.cOrder(fortran: fortran, shape: [2, 2, 2])
        #expect(c == [0, 4, 2, 6, 1, 5, 3, 7])
    }

    @Test func whatIsNotAFloatArrayIsRefusedByName() throws {
        func file(_ header: String, body: Int = 8, major: UInt8 = 1) -> [UInt8] {
            let padded = header + String(repeating: " ", count: 64 - (10 + header.utf8.count + 1) % 64) + "\n"
            return [0x93] + Array("NUMPY".utf8) + [major, 0, UInt8(padded.utf8.count), 0] + Array(padded.utf8)
                + [UInt8](repeating: 0, count: body)
        }
        let good = "{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }"
        #expect(try NumpyArray(decoding: file(good)).values == [0])
        #expect(throws: NumpyError.notNumpy) { try NumpyArray(decoding: Array("not numpy at all".utf8)) }
        #expect(throws: NumpyError.version(major: 9, minor: 0)) { try NumpyArray(decoding: file(good, major: 9)) }
        #expect(throws: NumpyError.dtype("<i8")) {
            try NumpyArray(decoding: file("{'descr': '<i8', 'fortran_order': False, 'shape': (1,), }"))
        }
        #expect(throws: NumpyError.dtype(">f8")) {
            try NumpyArray(decoding: file("{'descr': '>f8', 'fortran_order': False, 'shape': (1,), }"))
        }
        #expect(throws: NumpyError.dtype("|O")) {
            try NumpyArray(decoding: file("{'descr': '|O', 'fortran_order': False, 'shape': (1,), }"))
        }
        #expect(throws: NumpyError.body(expected: 8, actual: 16)) { try NumpyArray(decoding: file(good, body: 16)) }
        #expect(throws: NumpyError.body(expected: 16, actual: 8)) {
            try NumpyArray(decoding: file("{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }"))
        }
        for malformed in [
            "{'descr': '<f8', 'shape': (1,), }", "{'descr': '<f8', 'fortran_order': Maybe, 'shape': (1,), }",
            "{'descr': '<f8', 'fortran_order': False, 'shape': (-1,), }",
            "{'descr': '<f8', 'fortran_order': False, 'shape': (1,), 'extra': 1, }",
            "{'descr': '<f8', 'descr': '<f8', 'fortran_order': False, 'shape': (1,), }",
            "{'descr': '<f8', 'fortran_order': False, 'shape': (1,), } trailing",
            "{'descr': '<f8', 'fortran_order': False, 'shape': (99999999999, 99999999999), }",
        ] {
            #expect(throws: NumpyError.self, "\(malformed)") { try NumpyArray(decoding: file(malformed)) }
        }
    }

    /// Real NumPy reads what Veil writes and writes what Veil reads: float64 and float32, C
    /// and Fortran order, format versions 1.0 and 2.0.
    @Test func numpyItselfAgrees() async throws {
        let directory = try RepositoryPaths.temporaryDirectory("veil-npy")
        defer { try? FileManager.default.removeItem(at: directory) }
        let mine = NumpyArray(shape: [2, 3], values: [0.1, -2, 3e-300, 4, .pi, 6])
        try Data(mine.encoded).write(to: directory.appendingPathComponent("veil.npy"))
        let script = """
            import numpy as np, numpy.lib.format as f
            a = np.load('veil.npy', allow_pickle=False)
            assert a.dtype == np.float64 and a.shape == (2, 3), a
            assert a.tolist() == [[0.1, -2.0, 3e-300], [4.0, np.pi, 6.0]], a.tolist()
            b = np.arange(24, dtype=np.float32).reshape(2, 3, 4) / 7
            np.save('c32.npy', b)
            np.save('f64.npy', np.asfortranarray(b.astype(np.float64)))
            with open('v2.npy', 'wb') as out:
                f.write_array(out, b.astype(np.float64), version=(2, 0))
            print('ok')
            """
        let output = try await ProcessRunner.run("/usr/bin/env", ["python3", "-c", script], in: directory)
        #expect(output.status == 0 && output.stdout == "ok\n", "\(output.stderr)")
        let expected = (0..<24).map { Double(Float($0) / 7) }
        for name in ["c32.npy", "f64.npy", "v2.npy"] {
            let bytes = try [UInt8](Data(contentsOf: directory.appendingPathComponent(name)))
            let array = try NumpyArray(decoding: bytes)
            #expect(array.shape == [2, 3, 4], "\(name)")
            #expect(array.values == expected, "\(name)")
        }
    }

    @Test func csvTextReadsBackExactly() throws {
        let data = try Dataset(features: [0.1, 1.0 / 3, -2e-17, 5], labels: [1, 0], featureCount: 2, classCount: 2)
        let back = try CSVLoader.parse(CSVLoader.text(of: data), classCount: 2, source: "t")
        #expect(back.features == data.features && back.labels == data.labels)
    }

    /// `tensors:NAME=D1xD2x…,…` (`Specs/trainer.md` §2.1): read back from its canonical text,
    /// every malformed spelling refused by name.
    @Test func aTensorSchemaParsesItsCanonicalTextAndRefusesTheRest() throws {
        let text = "tensors:conv.weight=4x1x3x3,conv.bias=4,fc.weight=10x144,fc.bias=10"
        let schema = try TensorSchema(parsing: text)
        #expect(schema.tensors.map(\.name) == ["conv.weight", "conv.bias", "fc.weight", "fc.bias"])
        #expect(schema.tensors.map(\.shape) == [[4, 1, 3, 3], [4], [10, 144], [10]])
        #expect(schema.count == 36 + 4 + 1440 + 10 && schema.specification == text)
        let model = try FederatedModel(text, featureCount: 64, classCount: 10)
        #expect(model.veil == nil && model.parameterCount == 1490 && model.schema == schema)
        for (bad, reason) in [
            ("tensors:", "is not NAME=D1xD2x"),
            ("tensors:a=2,a=3", "appears twice"),
            ("tensors:a=0", "1 to 8 positive dimensions"),
            ("tensors:a=02", "1 to 8 positive dimensions"),
            ("tensors:a=2x", "1 to 8 positive dimensions"),
            ("tensors:a b=2", "must be 1 to 128 letters"),
            ("tensors:=2", "must be 1 to 128 letters"),
            ("tensors:a=4096x4096x2", "more than 16777216 values"),
            ("tensors:a=4096x4096,b=1", "the schema has more than 16777216 values"),
            ("tensors:a=99999999x99999999x99999999", "more than 16777216 values"),
        ] {
            #expect(throws: DataError.self, "\(bad)") { try TensorSchema(parsing: bad) }
            do { _ = try TensorSchema(parsing: bad) } catch {
                #expect(error.description.contains(reason), "\(bad): \(error.description)")
            }
        }
    }

    /// The starting values are the frameworks' layer defaults: ±1/√fan_in for weights and the
    /// biases beside them, ones for a normalisation's scale and variance, zeros otherwise;
    /// the same for the same seed.
    @Test func aTensorSchemaStartsFromTheFrameworksLayerDefaults() throws {
        let schema = try TensorSchema(
            parsing:
                "tensors:conv.weight=4x1x3x3,conv.bias=4,bn.weight=4,bn.bias=4,bn.running_var=4,fc.weight=10x144,fc.bias=10,step=1"
        )
        var generator = Xoshiro256(seed: 7, purpose: .initialParameters)
        let values = schema.initialParameters(using: &generator)
        let tensors = schema.split(values)
        #expect(tensors[0].allSatisfy { abs($0) <= 1 / 3 } && Set(tensors[0]).count == 36)
        #expect(tensors[1].allSatisfy { abs($0) <= 1 / 3 } && tensors[1].contains { $0 != 0 })
        #expect(tensors[2] == [1, 1, 1, 1] && tensors[3] == [0, 0, 0, 0] && tensors[4] == [1, 1, 1, 1])
        #expect(tensors[5].allSatisfy { abs($0) <= 1 / 12 } && tensors[6].allSatisfy { abs($0) <= 1 / 12 })
        #expect(tensors[5].map(abs).max()! > 1 / 13)
        #expect(tensors[7] == [0])
        var again = Xoshiro256(seed: 7, purpose: .initialParameters)
        #expect(schema.initialParameters(using: &again) == values)
    }
}
