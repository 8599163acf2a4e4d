import HydraSite
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1

/// The gate's TLS connections to Slurm jobs' servers, kept open between requests: a new one
/// costs a handshake with the server (4-5 ms of Python's ssl under tornado), more than the rest
/// of a warm visit's lab page. A connection carries one request at a time and only that
/// person's requests to that start's server (its key names the person, the endpoint and the
/// certificate's pin), so nobody's request waits behind anybody's: when none is idle, the
/// gate opens another. Only GET and HEAD without a body use them (`RequestHead.mayUseKeptConnection`);
/// websockets and requests with a body get a connection of their own, spliced as before.
///
/// One pool per event loop, used only on it (an Apache connection and the server's connection
/// it uses share that loop).
package final class KeptConnections: Sendable {
    /// Idle connections kept per person and server: a browser opens about six at once.
    package static let idlePerServer = 8
    /// Idle connections kept per event loop, over everybody.
    static let idlePerLoop = 512

    private let pools = NIOLockedValueBox<[ObjectIdentifier: NIOLoopBound<Pool>]>([:])

    /// The pool of the loop this is called on.
    package func pool(on eventLoop: EventLoop) -> Pool {
        let key = ObjectIdentifier(eventLoop)
        let bound = pools.withLockedValue { pools in
            if let bound = pools[key] { return bound }
            let bound = NIOLoopBound(Pool(), eventLoop: eventLoop)
            pools[key] = bound
            return bound
        }
        return bound.value
    }

    package struct Key: Hashable {
        package let person: String
        package let address: String
        package let port: Int
        package let pin: String

        package init(person: String, address: String, port: Int, pin: String) {
            (self.person, self.address, self.port, self.pin) = (person, address, port, pin)
        }
    }

    package final class Pool {
        private var idle: [Key: [KeptConnection]] = [:]
        private var count = 0

        package init() {}

        /// An idle connection for `key` that is still open, if there is one.
        package func take(_ key: Key) -> KeptConnection? {
            while let connection = idle[key]?.popLast() {
                count -= 1
                if connection.channel.isActive { return connection }
            }
            return nil
        }

        /// Keeps `connection` for its key's next request, or closes it when enough are kept.
        package func keep(_ connection: KeptConnection) {
            guard connection.channel.isActive, count < KeptConnections.idlePerLoop,
                  idle[connection.key, default: []].count < KeptConnections.idlePerServer else {
                connection.channel.close(promise: nil)
                return
            }
            idle[connection.key, default: []].append(connection)
            count += 1
        }

        /// Forgets a connection that closed while idle.
        func forget(_ connection: KeptConnection) {
            guard let index = idle[connection.key]?.firstIndex(where: { $0 === connection }) else { return }
            idle[connection.key]?.remove(at: index)
            count -= 1
            if idle[connection.key]?.isEmpty == true { idle[connection.key] = nil }
        }
    }
}

/// One kept connection: TLS to the pinned server, then NIO's HTTP/1 client codec, which frames
/// each answer so that the connection can carry the next request. The answer's bytes go to
/// Apache as the server sent them (`AnswerTap`, before the codec); the codec only says where
/// the answer ends and whether the server keeps the connection (`AnswerEnd`).
package final class KeptConnection {
    package let channel: Channel
    package let key: KeptConnections.Key
    private let pool: KeptConnections.Pool
    let tap: AnswerTap
    /// The request under way on this connection, if any.
    private var exchange: Exchange?

    /// Where a request's answer goes, and what to do at its end.
    struct Exchange {
        /// Apache's connection, which receives the answer's bytes.
        let apache: ChannelHandlerContext
        /// The answer has ended (the connection is kept, or closed if the server will not keep it).
        let ended: () -> Void
        /// The connection ended or fell silent before the answer's end.
        let failed: (Failure) -> Void
        var answered = false
    }

    struct Failure {
        /// Some of the answer reached Apache already.
        let answered: Bool
        /// Nothing moved for the idle time (else the connection closed or failed).
        let silent: Bool
    }

    package init(channel: Channel, key: KeptConnections.Key, pool: KeptConnections.Pool) {
        (self.channel, self.key, self.pool) = (channel, key, pool)
        tap = AnswerTap()
        tap.connection = self
    }

    /// The handlers after TLS and before the codec, and after the codec (with the idle timer).
    func handlers(idleSeconds: Int) -> (beforeCodec: ChannelHandler, afterCodec: [ChannelHandler]) {
        (tap, [IdleStateHandler(allTimeout: .seconds(Int64(idleSeconds))), AnswerEnd(self)])
    }

    /// Sends `head` (and its end: these requests have no body); the answer goes to `exchange`.
    func send(_ head: HTTPRequestHead, _ exchange: Exchange) {
        self.exchange = exchange
        channel.write(HTTPClientRequestPart.head(head), promise: nil)
        channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
    }

    /// Bytes of the answer, as they came from the server.
    fileprivate func answerBytes(_ data: NIOAny) {
        guard exchange != nil else { return }
        exchange?.answered = true
        exchange?.apache.write(data, promise: nil)
    }

    fileprivate func flushAnswer() {
        exchange?.apache.flush()
    }

    fileprivate func answerEnded(keepAlive: Bool) {
        guard let exchange else { return }
        self.exchange = nil
        exchange.apache.flush()
        exchange.ended()
        if keepAlive { pool.keep(self) } else { channel.close(promise: nil) }
    }

    /// The connection ended, failed or fell silent: a request under way hears it; an idle
    /// connection leaves the pool.
    fileprivate func ended(silent: Bool) {
        if let exchange {
            self.exchange = nil
            exchange.failed(Failure(answered: exchange.answered, silent: silent))
        } else {
            pool.forget(self)
        }
        channel.close(promise: nil)
    }

    /// Apache went away before the answer's end: the rest of it would arrive on this connection
    /// ahead of the next request's answer, so the connection is not kept.
    func abandon(by apache: ChannelHandlerContext) {
        guard let exchange, exchange.apache === apache else { return }
        self.exchange = nil
        channel.close(promise: nil)
    }

    fileprivate var apacheIsWritable: Bool { exchange?.apache.channel.isWritable ?? true }
}

/// First after TLS: passes the answer's bytes to Apache unchanged, and on to the codec; reads
/// from the server only while Apache's connection can take more.
final class AnswerTap: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    /// Weak: the connection holds its tap.
    fileprivate weak var connection: KeptConnection?
    private var context: ChannelHandlerContext?
    private var pendingRead = false

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        connection?.answerBytes(data)
        context.fireChannelRead(data)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        connection?.flushAnswer()
        context.fireChannelReadComplete()
    }

    func read(context: ChannelHandlerContext) {
        if connection?.apacheIsWritable ?? true { context.read() } else { pendingRead = true }
    }

    /// Apache's connection can take more again.
    func resume() {
        guard pendingRead, let context else { return }
        pendingRead = false
        context.read()
    }
}

/// Last: the codec's view of the answer (its end, and whether the server keeps the connection),
/// the connection's end, and its silence (the `IdleStateHandler` before it).
final class AnswerEnd: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart
    private let connection: KeptConnection
    private var keepAlive = false

    fileprivate init(_ connection: KeptConnection) {
        self.connection = connection
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): keepAlive = head.isKeepAlive
        case .body: break
        case .end: connection.answerEnded(keepAlive: keepAlive)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        connection.ended(silent: false)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        connection.ended(silent: false)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .all? = event as? IdleStateHandler.IdleStateEvent {
            connection.ended(silent: true)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }
}

extension RequestHead {
    /// This request as it goes over a kept connection: the hop's fields (Connection, Keep-Alive,
    /// and those Connection names) are left out, so that the server keeps the connection.
    package var forKeptConnection: HTTPRequestHead {
        let hopFields = Set(["connection", "keep-alive", "proxy-connection", "te", "trailer", "upgrade"]
            + fields.filter { $0.name.lowercased() == "connection" }.flatMap { field in
                field.value.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
            })
        var headers = HTTPHeaders()
        for field in fields where !hopFields.contains(field.name.lowercased()) {
            headers.add(name: field.name, value: field.value)
        }
        return HTTPRequestHead(version: .init(major: 1, minor: minorVersion), method: HTTPMethod(rawValue: method), uri: target, headers: headers)
    }
}
