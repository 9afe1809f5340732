import Foundation
import Testing

@testable import VeilPrivacy

@Suite struct AccountantTests {
    @Test func referencePointsOfTheIssue() {
        var a = RDPAccountant()
        a.compose(.poissonSampledGaussian(samplingRate: 0.01, noiseMultiplier: 1.0), count: 1000)
        let (e1, o1) = a.epsilon(delta: 1e-5)
        #expect(abs(e1 - 2.101366525420273) / 2.101366525420273 < 1e-9)
        #expect(o1 == 7.8)
        var b = RDPAccountant()
        b.compose(.poissonSampledGaussian(samplingRate: 0.1, noiseMultiplier: 1.5), count: 1000)
        let (e2, o2) = b.epsilon(delta: 1e-5)
        #expect(abs(e2 - 13.618537263688015) / 13.618537263688015 < 1e-9)
        #expect(o2 == 2.8)
    }
}
