@testable import HydraSite
@testable import HydraServers
import Foundation
import NIOPosix
import Logging
import Testing
@testable import HydraGate

/// ClusterView with Slurm's commands answering from a folder of scripts (slurm.bin_dir): which
/// endpoints the gate may connect to. The real cluster's turn is test_slurm_backend.py.
@Suite("ClusterView: the gate connects only to a person's own running job")
final class ClusterViewTests {
    let binDir = FileManager.default.temporaryDirectory.appendingPathComponent("hydra-slurm-\(UUID().uuidString)").path
    let alice = try! UserName("alice")
    let pin = String(repeating: "ab", count: 32)

    init() throws {
        try FileManager.default.createDirectory(atPath: binDir, withIntermediateDirectories: true)
        script("sinfo", "node1|169.254.1.2\nnode2|169.254.2.2\n")
        script("squeue", "41|RUNNING|None|node1|2026-12-02T01:00:00|alice|hydra-alice\n42|RUNNING|None|node2|2026-12-02T01:00:00|bob|hydra-bob\n")
    }

    deinit { try? FileManager.default.removeItem(atPath: binDir) }

    func script(_ name: String, _ output: String) {
        let path = "\(binDir)/\(name)"
        _ = FileManager.default.createFile(atPath: path, contents: Data("#!/bin/sh\nprintf '\(output.replacingOccurrences(of: "\n", with: "\\n"))'\n".utf8),
                                       attributes: [.posixPermissions: 0o755])
    }

    func view() throws -> ClusterView {
        let settings = try #require(try HydraConfig.parse("[site]\npublic_url = \"http://x\"\n[slurm]\nport_range = [21000, 21999]\nbin_dir = \"\(binDir)\"\n",
                                                          path: "x").slurm)
        let view = ClusterView(settings: settings, logger: Logger(label: "test"))
        view.refresh()
        return view
    }

    @Test func herOwnRunningJobAtItsNodesAddressWithinThePortRange() throws {
        #expect(try view().allows(JobEndpoint(job: "41", address: "169.254.1.2", port: 21000, pin: pin), written: 0, for: alice))
    }

    @Test("threat: an endpoint that points at another person's job, another node, a port outside the range or something not a node")
    func anythingElseIsRefused() throws {
        let view = try view()
        for endpoint in [JobEndpoint(job: "42", address: "169.254.2.2", port: 21000, pin: pin),     // bob's job
                         JobEndpoint(job: "41", address: "169.254.2.2", port: 21000, pin: pin),     // her job, another node
                         JobEndpoint(job: "41", address: "169.254.1.2", port: 22, pin: pin),        // outside port_range
                         JobEndpoint(job: "41", address: "127.0.0.1", port: 21000, pin: pin),       // the web host itself
                         JobEndpoint(job: "99", address: "10.0.0.1", port: 21000, pin: pin)] {      // not a node
            #expect(!view.allows(endpoint, written: Date().timeIntervalSince1970 + 60, for: alice), "\(endpoint)")
        }
    }

    @Test("squeue at every look; sinfo once a minute, or when a job runs on a node it has not listed")
    func nodesAreListedRarely() throws {
        let calls = "\(binDir)/calls"
        func logging(_ name: String, _ output: String) {
            _ = FileManager.default.createFile(atPath: "\(binDir)/\(name)",
                                               contents: Data("#!/bin/sh\necho \(name) >> \(calls)\nprintf '\(output.replacingOccurrences(of: "\n", with: "\\n"))'\n".utf8),
                                               attributes: [.posixPermissions: 0o755])
        }
        func count(_ name: String) -> Int {
            ((try? String(contentsOfFile: calls, encoding: .utf8)) ?? "").split(separator: "\n").filter { $0 == name }.count
        }
        logging("sinfo", "node1|169.254.1.2\nnode2|169.254.2.2\n")
        logging("squeue", "41|RUNNING|None|node1|2026-12-02T01:00:00|alice|hydra-alice\n")
        let view = try view()
        view.refresh()
        view.refresh()
        #expect((count("squeue"), count("sinfo")) == (3, 1))
        logging("sinfo", "node1|169.254.1.2\nnode2|169.254.2.2\nnode3|169.254.3.2\n")
        logging("squeue", "41|RUNNING|None|node3|2026-12-02T01:00:00|alice|hydra-alice\n")
        view.refresh()
        #expect(count("sinfo") == 2 && view.allows(JobEndpoint(job: "41", address: "169.254.3.2", port: 21000, pin: pin), written: 0, for: alice))
    }

    @Test("the metrics' running servers of Slurm jobs: hydra's jobs only, not a person's own sbatch")
    func serverJobOwners() throws {
        script("squeue", "41|RUNNING|None|node1|2026-12-02T01:00:00|alice|hydra-alice\n43|RUNNING|None|node2|2026-12-02T01:00:00|bob|my-simulation\n"
               + "44|RUNNING|None|node2|2026-12-02T01:00:00|carol|hydra-alice\n")
        #expect(try view().serverJobOwners() == ["alice"])
    }

    @Test("a look still under way (a slow slurmctld) makes the next tick skip, not queue another")
    func aSlowLookIsNotQueuedTwice() throws {
        let settings = try #require(try HydraConfig.parse("[site]\npublic_url = \"http://x\"\n[slurm]\nport_range = [21000, 21999]\nbin_dir = \"\(binDir)\"\n",
                                                          path: "x").slurm)
        let view = ClusterView(settings: settings, logger: Logger(label: "test"), intervalSeconds: 3600)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        view.start(on: group.next())
        let looks = "\(binDir)/looks"
        _ = FileManager.default.createFile(atPath: "\(binDir)/squeue", contents: Data("#!/bin/sh\necho look >> \(looks)\nsleep 1\n".utf8),
                                           attributes: [.posixPermissions: 0o755])
        #expect(view.lookUnlessLooking())
        #expect(!view.lookUnlessLooking() && !view.lookUnlessLooking())
        let deadline = Date().addingTimeInterval(10)
        while !view.lookUnlessLooking(), Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        Thread.sleep(forTimeInterval: 1.5)
        let ran = (try? String(contentsOfFile: looks, encoding: .utf8))?.split(separator: "\n").count
        #expect(ran == 2)  // the first look and the one after it, never the skipped ones
    }

    @Test func aJobTheLastLookMissedCountsOnlyIfItsEndpointIsNewerThanTheLook() throws {
        let view = try view()
        let fresh = JobEndpoint(job: "43", address: "169.254.2.2", port: 21500, pin: pin)
        #expect(view.allows(fresh, written: Date().timeIntervalSince1970 + 30, for: alice))  // newer than any look a loaded machine just made
        #expect(!view.allows(fresh, written: Date().timeIntervalSince1970 - 60, for: alice))
    }

    @Test func aJobThatEndsIsRefusedAtTheNextLook() throws {
        let view = try view()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        view.start(on: group.next())
        let endpoint = JobEndpoint(job: "41", address: "169.254.1.2", port: 21000, pin: pin)
        #expect(view.allows(endpoint, written: 0, for: alice))
        script("squeue", "42|RUNNING|None|node2|2026-12-02T01:00:00|bob|hydra-bob\n")
        let deadline = Date().addingTimeInterval(Double(ClusterView.defaultIntervalSeconds) * 3)
        while view.allows(endpoint, written: 0, for: alice), Date() < deadline { Thread.sleep(forTimeInterval: 0.1) }
        #expect(!view.allows(endpoint, written: 0, for: alice))
    }

    @Test func withNoNodesListedNothingIsAllowed() throws {
        script("sinfo", "")
        #expect(try !view().allows(JobEndpoint(job: "41", address: "169.254.1.2", port: 21000, pin: pin), written: .infinity, for: alice))
    }
}
