import HydraSite
import HydraGate
import HydraSystem
import Testing

@Suite("Admission: per-person and site limits")
struct AdmissionTests {
    let settings = try! HydraConfig.parse("""
        [site]
        public_url = "http://localhost"
        [gate]
        requests_per_person = 2
        websockets_per_person = 3
        requests_total = 3
        websockets_total = 100
        """, path: "hydra.toml").gate
    let alice = try! UserName("alice")
    let bob = try! UserName("bob")

    @Test func onePersonIsStoppedAtTheirOwnLimitAndOthersGoOn() {
        let admission = Admission(settings: settings)
        #expect(admission.admit(alice, .request) == nil)
        #expect(admission.admit(alice, .request) == nil)
        #expect(admission.admit(alice, .request) == .personLimit(2))
        #expect(admission.admit(bob, .request) == nil)
        #expect(admission.usage(of: alice).requests == 2)
    }

    @Test func theSiteLimitHoldsForEverybody() {
        let admission = Admission(settings: settings)
        _ = admission.admit(alice, .request)
        _ = admission.admit(alice, .request)
        _ = admission.admit(bob, .request)
        #expect(admission.admit(bob, .request) == .siteLimit(3))
    }

    @Test func websocketsAndRequestsAreCountedApart() {
        let admission = Admission(settings: settings)
        _ = admission.admit(alice, .request)
        _ = admission.admit(alice, .request)
        #expect(admission.admit(alice, .websocket) == nil)
        #expect(admission.usage(of: alice) == Admission.Usage(requests: 2, websockets: 1))
    }

    @Test func aReleaseFreesTheSlotAndForgetsAnIdlePerson() {
        let admission = Admission(settings: settings)
        _ = admission.admit(alice, .request)
        _ = admission.admit(alice, .request)
        admission.release(alice, .request)
        #expect(admission.admit(alice, .request) == nil)
        admission.release(alice, .request)
        admission.release(alice, .request)
        #expect(admission.usage(of: alice) == Admission.Usage())
        #expect(admission.siteUsage == Admission.Usage())
    }

    @Test func refusalsAreLoggedOncePerIntervalWithTheirCount() {
        let admission = Admission(settings: settings)
        #expect(admission.refusalToLog("alice", now: 100) == 1)
        #expect(admission.refusalToLog("alice", now: 101) == nil)
        #expect(admission.refusalToLog("alice", now: 105) == nil)
        #expect(admission.refusalToLog("bob", now: 105) == 1)
        #expect(admission.refusalToLog("alice", now: 111) == 3)
    }
}
