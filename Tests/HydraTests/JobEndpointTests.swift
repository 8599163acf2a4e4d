@testable import HydraSite
@testable import HydraAccounts
@testable import HydraServers
import Foundation
import Testing
@testable import HydraSystem

/// The endpoint file the front writes for a person's Slurm job and hydra-gate reads on every
/// request to that person: the gate connects where it says (with the cluster's confirmation,
/// ClusterViewTests), so anything but the front's own well-formed file must read as "no job".
@Suite("A job's endpoint file: only the front's own, well-formed file is read")
final class JobEndpointTests {
    let base = FileManager.default.temporaryDirectory.appendingPathComponent("hydra-endpoint-\(UUID().uuidString)").path
    let pin = String(repeating: "ab", count: 32)
    let config: HydraConfig
    var folder: String { "\(base)/\(RuntimeDirectory.frontDirectoryName)/\(JobEndpoint.folderName)" }

    init() throws {
        try FileManager.default.createDirectory(atPath: "\(base)/\(RuntimeDirectory.frontDirectoryName)", withIntermediateDirectories: true)
        config = try HydraConfig.parse("""
            [site]
            public_url = "https://jupyter.example.org"
            [server]
            runtime_dir = "\(base)"
            """, path: "x")
    }

    deinit { try? FileManager.default.removeItem(atPath: base) }

    @Test("what the front writes, the gate reads back, with the time it was written; removing it leaves none")
    func roundTrip() throws {
        let ada = try UserName("ada")
        #expect(JobEndpoint.read(for: ada, config: config) == nil)
        let endpoint = JobEndpoint(job: "4711", address: "169.254.0.2", port: 9123, pin: pin)
        let before = Date().timeIntervalSince1970 - 1
        try endpoint.write(for: ada, config: config)
        let read = try #require(JobEndpoint.read(for: ada, config: config))
        #expect(read.endpoint == endpoint)
        #expect(read.written >= before && read.written <= Date().timeIntervalSince1970 + 1)
        let mode = try #require(try FileManager.default.attributesOfItem(atPath: "\(folder)/ada")[.posixPermissions] as? Int)
        #expect(mode == 0o660, "the web server's group reads it, nobody else")
        JobEndpoint.remove(for: ada, config: config)
        #expect(JobEndpoint.read(for: ada, config: config) == nil)
    }

    @Test("threat: a malformed or planted endpoint file points the gate nowhere")
    func malformedFilesReadAsNoJob() throws {
        let ada = try UserName("ada")
        try JobEndpoint(job: "1", address: "169.254.0.2", port: 9000, pin: pin).write(for: ada, config: config)
        let path = "\(folder)/ada"
        let bad = [
            "4711 169.254.0.2 9123\n",                                   // no pin: the gate would speak to anyone
            "4711 169.254.0.2 9123 \(pin) extra\n",                      // a fifth field
            "4711 169.254.0.2 http \(pin)\n",                            // not a port
            "4711 169.254.0.2 9123 \(pin.uppercased())\n",              // not hydra's lowercase SHA-256
            "4711 169.254.0.2 9123 \(pin.dropLast())\n",                // 63 digits
            "4711 169.254.0.2 9123 \(String(repeating: "g", count: 64))\n",
            "4711 169.254.0.2 9123 \(pin)\n" + String(repeating: " ", count: 300), // over 256 bytes
            "",
        ]
        for text in bad {
            try FileManager.default.removeItem(atPath: path)
            try text.write(toFile: path, atomically: false, encoding: .utf8)
            #expect(JobEndpoint.read(for: ada, config: config) == nil, "read: \(text)")
        }
    }

    @Test("threat: a link or a folder in the endpoint's place is not followed")
    func linksAndFoldersAreNotFollowed() throws {
        let ada = try UserName("ada"), bob = try UserName("bob")
        try JobEndpoint(job: "1", address: "169.254.0.2", port: 9000, pin: pin).write(for: bob, config: config)
        try FileManager.default.createSymbolicLink(atPath: "\(folder)/ada", withDestinationPath: "\(folder)/bob")
        #expect(JobEndpoint.read(for: ada, config: config) == nil, "ada's name must not lead to bob's job")
        try FileManager.default.removeItem(atPath: "\(folder)/ada")
        try FileManager.default.createDirectory(atPath: "\(folder)/ada", withIntermediateDirectories: false)
        #expect(JobEndpoint.read(for: ada, config: config) == nil)
        #expect(JobEndpoint.read(for: bob, config: config) != nil)
    }
}
