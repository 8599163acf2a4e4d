import HydraSite
import HydraServers
import FoundationEssentials
import NIOCore
import NIOPosix

/// The gate's control socket (`GateControl`): the front reports events and reads the metrics
/// and each person's activity here. One line in, the answer out, then the gate closes.
final class ControlConnection: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var line: ByteBuffer?
    private let gate: Gate

    init(gate: Gate) {
        self.gate = gate
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        guard line != nil || bytes.readableBytes > 0 else { return }
        line.setOrWriteBuffer(&bytes)
        guard let received = line else { return }
        guard let end = received.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) else {
            if received.readableBytes > GateControl.maximumLineBytes { context.close(promise: nil) }
            return
        }
        let text = String(decoding: received.readableBytesView[..<end], as: UTF8.self)
        line = nil
        respond(to: text, context: context)
    }

    private func respond(to text: String, context: ChannelHandlerContext) {
        var answer: [UInt8] = []
        if text == GateControl.metricsCommand {
            answer = gate.metrics.exposition(jobOwners: gate.cluster?.serverJobOwners() ?? [])
        } else if text == GateControl.peopleCommand {
            answer = (try? JSONEncoder().encode(gate.admission.activity())).map { Array($0) } ?? []
        } else if text.hasPrefix(GateControl.servingPrefix) {
            let person = try? UserName(String(text.dropFirst(GateControl.servingPrefix.count)))
            answer = Array((person.flatMap(gate.confirmedJob) != nil ? "yes" : "no").utf8)
        } else if text.hasPrefix(GateControl.eventPrefix) {
            if let event = try? JSONDecoder().decode(SiteEvent.self, from: Data(text.dropFirst(GateControl.eventPrefix.count).utf8)) {
                gate.metrics.record(event)
            } else {
                gate.logger.warning("an event on the control socket that is not one: \(LogSafe.quote(text, limit: 200))")
            }
        }
        var buffer = context.channel.allocator.buffer(capacity: answer.count)
        buffer.writeBytes(answer)
        context.writeAndFlush(wrapOutboundOut(buffer)).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}
