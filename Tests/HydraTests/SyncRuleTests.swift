@testable import HydraCourses
import Testing
@testable import HydraFront
@testable import HydraSystem

/// hydra's sync rule, path by path (TutorialSync.decide): a file the person never changed follows
/// the course; a file they changed stays byte-identical, with the course's new version beside
/// it; a file they deleted comes back. A, B: the course's old and new versions; U: the person's
/// own; C: a version a killed sync may already have written.
@Suite("The sync rule, case by case")
struct SyncRuleTests {
    struct Case: CustomTestStringConvertible, Sendable {
        let what: String
        let found: TutorialSync.Found
        let upstream: String?
        let delivered: String?
        var interrupted: Set<String> = []
        var restoreDeleted = true
        let expected: TutorialSync.Action
        var testDescription: String { what }
    }

    static let cases: [Case] = [
        Case(what: "unchanged on both sides", found: .file("A"), upstream: "A", delivered: "A", expected: .leave),
        Case(what: "changed by the course only", found: .file("A"), upstream: "B", delivered: "A", expected: .update),
        Case(what: "changed by the person only", found: .file("U"), upstream: "A", delivered: "A", expected: .leave),
        Case(what: "changed by both", found: .file("U"), upstream: "B", delivered: "A", expected: .keepWithUpstreamCopy),
        Case(what: "the person made it what the course now has", found: .file("B"), upstream: "B", delivered: "A", expected: .leave),
        Case(what: "new in the course", found: .missing, upstream: "B", delivered: nil, expected: .add),
        Case(what: "new in the course, the person has a file of that name", found: .file("U"), upstream: "B", delivered: nil,
             expected: .keepWithUpstreamCopy),
        Case(what: "deleted by the person", found: .missing, upstream: "A", delivered: "A", expected: .restore),
        Case(what: "deleted by the person, restore_deleted off", found: .missing, upstream: "A", delivered: "A",
             restoreDeleted: false, expected: .leave),
        Case(what: "deleted by the person, changed by the course", found: .missing, upstream: "B", delivered: "A", expected: .restore),
        Case(what: "deleted by the course, untouched by the person", found: .file("A"), upstream: nil, delivered: "A", expected: .remove),
        Case(what: "deleted by the course, changed by the person", found: .file("U"), upstream: nil, delivered: "A", expected: .leave),
        Case(what: "deleted on both sides", found: .missing, upstream: nil, delivered: "A", expected: .leave),
        Case(what: "a killed sync had written the new version", found: .file("B"), upstream: "B", delivered: "A", interrupted: ["B"],
             expected: .leave),
        Case(what: "a killed sync had written a version the course has since replaced", found: .file("C"), upstream: "B",
             delivered: "A", interrupted: ["C"], expected: .update),
        Case(what: "a killed sync had written a file the course has since dropped", found: .file("C"), upstream: nil,
             delivered: nil, interrupted: ["C"], expected: .remove),
        Case(what: "a killed first sync, the file since deleted by the person", found: .missing, upstream: "B", delivered: nil,
             interrupted: ["B"], expected: .restore),
        Case(what: "a killed first sync, deleted, restore_deleted off", found: .missing, upstream: "B", delivered: nil,
             interrupted: ["B"], restoreDeleted: false, expected: .leave),
        Case(what: "a killed sync, then the person changed the file", found: .file("U"), upstream: "B", delivered: "A",
             interrupted: ["C"], expected: .keepWithUpstreamCopy),
        Case(what: "something of the person's in the way of a course change", found: .blocked, upstream: "B", delivered: "A",
             expected: .blocked),
        Case(what: "something in the way of a new course file", found: .blocked, upstream: "B", delivered: nil, expected: .blocked),
        Case(what: "something in the way, the course unchanged", found: .blocked, upstream: "A", delivered: "A", expected: .leave),
        Case(what: "something in the way, the course dropped the file", found: .blocked, upstream: nil, delivered: "A", expected: .leave),
        Case(what: "the person's own file, never the course's", found: .file("U"), upstream: nil, delivered: nil, expected: .leave),
        Case(what: "nothing anywhere", found: .missing, upstream: nil, delivered: nil, expected: .leave),
    ]

    @Test("each case", arguments: cases)
    func rule(_ c: Case) {
        #expect(TutorialSync.decide(found: c.found, upstream: c.upstream, delivered: c.delivered, interrupted: c.interrupted,
                                    restoreDeleted: c.restoreDeleted) == c.expected)
    }

    @Test("what the person changed is never overwritten or removed, whatever the course did")
    func personsVersionIsNeverTouched() {
        for upstream in ["A", "B", nil] as [String?] {
            for delivered in ["A", nil] as [String?] {
                let action = TutorialSync.decide(found: .file("U"), upstream: upstream, delivered: delivered, restoreDeleted: true)
                #expect([.leave, .keepWithUpstreamCopy].contains(action), "course \(upstream ?? "-"), delivered \(delivered ?? "-"): \(action)")
            }
        }
    }
}
