import HydraSite
import HydraAccounts
import HydraServers
import HydraPages
import HydraSystem
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import NIOHTTP1

/// hydra-gate: the one way from Apache to the notebook servers. Apache proxies every
/// `/user/NAME/...` request (already authenticated, and only for NAME itself) to the gate's
/// socket, one connection per request or websocket; the gate
/// - admits it within `[gate]`'s limits per person and for the site, else answers 429 or 503
///   at once, so a person whose server stalls, or who opens connections without end, holds at
///   most their share of Apache's workers (each proxied request or websocket holds one);
/// - connects to the person's own server only (`ServerSocket`: no link or foreign socket; with
///   the Slurm backend, the endpoint the front wrote, checked against the cluster: `ClusterView`,
///   over TLS to the one certificate that start made: `PinnedServer`, on a connection kept
///   from that person's earlier GETs to it: `KeptConnections`);
/// - sends a browser whose server is not running back through the front, which starts it;
/// - ends a request whose answer does not begin within `response_timeout_seconds` (504), and a
///   websocket idle for `websocket_idle_timeout_seconds`.
/// It holds no thread per connection (SwiftNIO), so a thousand open websockets cost it little.
package final class Gate: Sendable {
    package let config: HydraConfig
    package let admission: Admission
    package let metrics: SiteMetrics
    let logger: Logger
    let webGroupID: UInt32
    /// People's UIDs, so that the user database is not asked on the event loop at each request.
    let accounts = AccountCache()
    /// The Slurm backend's view of the cluster; nil with local servers.
    let cluster: ClusterView?
    /// TLS to a Slurm job's server (nil with local servers, or if BoringSSL would not make a context).
    let tls: NIOSSLContext?
    /// Connections to Slurm jobs' servers kept for their person's next GET.
    let keptConnections = KeptConnections()

    package init(config: HydraConfig, logger: Logger) throws(ConfigError) {
        guard let webGroup = UserDatabase.group(named: config.site.webServerGroup) else {
            throw ConfigError.invalidValue(path: HydraConfig.defaultPath, line: 0, key: "site.web_server_group",
                                           reason: "the group '\(config.site.webServerGroup)' does not exist")
        }
        self.config = config
        self.admission = Admission(settings: config.gate)
        self.metrics = SiteMetrics(config: config, admission: admission)
        self.logger = logger
        self.webGroupID = webGroup.gid
        self.cluster = config.clusterSlurm.map { ClusterView(settings: $0, logger: logger) }
        do {
            self.tls = cluster == nil ? nil : try PinnedServer.context()
        } catch {
            logger.critical("no TLS for the servers of Slurm jobs (nobody will reach their server): \(error)")
            self.tls = nil
        }
    }

    /// Serves on `socketPath`, and the control socket beside it, until the process ends.
    package func run(socketPath: String, threads: Int) throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        cluster?.start(on: group.next())
        let server = try listen(on: socketPath, group: group)
        _ = try listenForControl(on: Self.controlSocketPath(beside: socketPath), group: group)
        let limits = config.gate
        logger.info("""
            listening on \(socketPath); per person: \(limits.requestsPerPerson) requests, \(limits.websocketsPerPerson) websockets; \
            site: \(limits.requestsTotal) requests, \(limits.websocketsTotal) websockets; answers within \(limits.responseTimeoutSeconds) s, \
            websockets idle up to \(limits.websocketIdleTimeoutSeconds) s
            """)
        try server.closeFuture.wait()
    }

    /// The listening channel on `socketPath` (a stale socket file there is replaced).
    package func listen(on socketPath: String, group: EventLoopGroup) throws -> Channel {
        try ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 4096)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ApacheSide(gate: self))
                }
            }
            .bind(unixDomainSocketPath: socketPath, cleanupExistingSocketFile: true).wait()
    }

    /// The control socket lives in the same folder as the socket Apache connects to.
    package static func controlSocketPath(beside socketPath: String) -> String {
        String(socketPath[..<(socketPath.lastIndex(of: "/") ?? socketPath.startIndex)]) + "/" + GateControl.socketName
    }

    /// The control channel on `socketPath` (`ControlConnection`).
    package func listenForControl(on socketPath: String, group: EventLoopGroup) throws -> Channel {
        try ServerBootstrap(group: group)
            .childChannelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ControlConnection(gate: self))
                }
            }
            .bind(unixDomainSocketPath: socketPath, cleanupExistingSocketFile: true).wait()
    }

    /// Where the person's server is: a connected socket on this machine, or a job's node and port.
    enum Upstream {
        case localSocket(Descriptor)
        case node(address: String, port: Int, pin: String)
    }

    /// A connection to the person's own server (or, for a Slurm job, its checked endpoint),
    /// or why there is none.
    func connect(_ person: UserName) -> Result<Upstream, ServerSocket.Refusal> {
        let now = monotonicSeconds()
        guard var uid = accounts.uid(of: person.value, now: now) else { return .failure(.absent) }
        // The folder's owner, group and mode are what make its socket the person's. Whether it is
        // a tmpfs of its own is the front's and addldapuser's to enforce (they read hydra.toml
        // at every start): the gate, which reads it once, never refuses a visit over it, so a
        // changed server.runtime_dir_size needs no restart of the gate.
        let runtime = RuntimeDirectory(base: config.server.runtimeDir)
        if !runtime.isReady(for: person, uid: uid, webGID: webGroupID) {
            // Perhaps an account made again with another UID since the cache asked.
            guard let current = accounts.recheck(person.value, stale: uid, now: now),
                  runtime.isReady(for: person, uid: current, webGID: webGroupID) else { return .failure(.absent) }
            uid = current
        }
        // A job's server where the front wrote an endpoint the cluster confirms (a Slurm
        // profile), else the socket here (a local profile's, perhaps chosen since).
        if let endpoint = confirmedJob(person) {
            return .success(.node(address: endpoint.address, port: endpoint.port, pin: endpoint.pin))
        }
        guard let directory = try? DirectoryHandle.open(runtime.path(for: person)) else { return .failure(.absent) }
        return ServerSocket.connect(in: directory, ownerUID: uid).map(Upstream.localSocket)
    }

    /// The person's job endpoint, if the front wrote one and the cluster confirms it: where
    /// the gate connects, and what the front's warm path asks about (so that it runs nothing
    /// that asks Slurm).
    func confirmedJob(_ person: UserName) -> JobEndpoint? {
        guard let cluster, let (endpoint, written) = JobEndpoint.read(for: person, config: config),
              cluster.allows(endpoint, written: written, for: person) else { return nil }
        return endpoint
    }

    func logRefusal(_ refusal: Admission.Refusal, _ kind: Admission.Kind, _ head: RequestHead) {
        guard let count = admission.refusalToLog("\(head.person)/admission", now: monotonicSeconds()) else { return }
        let meanwhile = count > 1 ? " (\(count) refused since the last such line)" : ""
        switch refusal {
        case .personLimit(let limit):
            logger.warning("\(head.person) has \(limit) \(kind.rawValue)s under way, as many as gate.\(kind.rawValue)s_per_person allows: answered 429\(meanwhile)",
                           metadata: ["user": "\(head.person)"])
        case .siteLimit(let limit):
            logger.warning("the site has \(limit) \(kind.rawValue)s under way, as many as gate.\(kind.rawValue)s_total allows: answered 503 to \(head.person)\(meanwhile)",
                           metadata: ["user": "\(head.person)"])
        }
    }
}

/// One connection from Apache: reads the request head, then answers itself or splices the
/// connection to the person's server (or, for a GET to a Slurm job's server, relays it over a
/// kept connection). Apache sends one request per connection (no reuse).
final class ApacheSide: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private enum State { case readingHead, connecting, forwarding, relaying, answered }
    private var state = State.readingHead
    /// What Apache sent before the server's connection was ready (the head, perhaps some body).
    private var received: ByteBuffer?
    private var headTimer: Scheduled<Void>?
    /// The kept connection to a job's server carrying this request, while it does.
    private var kept: KeptConnection?
    private let gate: Gate

    init(gate: Gate) {
        self.gate = gate
    }

    func handlerAdded(context: ChannelHandlerContext) {
        // Apache writes the head at once; a connection that sends none is not Apache's.
        headTimer = context.eventLoop.assumeIsolated().scheduleTask(in: .seconds(10)) { [self] in
            answer(.badRequest, context: context)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        switch state {
        case .readingHead:
            received.setOrWriteBuffer(&bytes)
            switch RequestHead.parse(received!.readableBytesView) {
            case .incomplete: return
            case .invalid(let reason):
                gate.logger.warning("refused a request from Apache: \(reason)")
                answer(.badRequest, context: context)
            case .complete(let head):
                headTimer?.cancel()
                route(head, context: context)
            }
        case .connecting:
            received.setOrWriteBuffer(&bytes)
        case .forwarding:
            context.fireChannelRead(data)
        case .relaying, .answered:
            break
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        kept?.abandon(by: context)
        kept = nil
        context.fireChannelInactive()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { kept?.tap.resume() }
        context.fireChannelWritabilityChanged()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .inputClosed? = event as? ChannelEvent, state == .readingHead || state == .answered {
            context.close(promise: nil)
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }

    private func route(_ head: RequestHead, context: ChannelHandlerContext) {
        let kind: Admission.Kind = head.isWebSocket ? .websocket : .request
        if let refusal = gate.admission.admit(head.person, kind) {
            gate.metrics.recordRefusal(kind, refusal)
            gate.logRefusal(refusal, kind, head)
            switch refusal {
            case .personLimit(let limit): answer(.tooMany(kind, limit: limit, target: head.target), context: context)
            case .siteLimit: answer(.siteFull(target: head.target), context: context)
            }
            return
        }
        let admission = gate.admission
        context.channel.closeFuture.whenComplete { _ in admission.release(head.person, kind) }
        switch gate.connect(head.person) {
        case .failure(let refusal):
            if !refusal.meansNoServer, let count = gate.admission.refusalToLog("\(head.person)/connect", now: monotonicSeconds()) {
                gate.logger.warning("not connecting to the server of \(head.person): \(refusal)\(count > 1 ? " (\(count) times since the last such line)" : "")",
                                    metadata: ["user": "\(head.person)"])
            }
            // A browser goes to the front, which starts a server (replacing whatever was
            // planted); an API call hears that there is no server to answer it.
            answer(head.isPageVisit ? .toFront(target: head.target) : refusal.meansNoServer ? .notRunning : .badGateway, context: context)
        case .success(.node(let address, let port, let pin)) where head.mayUseKeptConnection && received?.readableBytes == head.byteCount:
            relay(head, to: KeptConnections.Key(person: head.person.value, address: address, port: port, pin: pin), mayReuse: true, context: context)
        case .success(let upstream):
            splice(upstream, head: head, kind: kind, context: context)
        }
    }

    /// A GET or HEAD to a Slurm job's server, over a connection kept from the person's earlier
    /// requests to it when one is idle, else over a new one that is kept afterwards.
    private func relay(_ head: RequestHead, to key: KeptConnections.Key, mayReuse: Bool, context: ChannelHandlerContext) {
        state = .relaying
        received = nil
        let pool = gate.keptConnections.pool(on: context.eventLoop)
        if mayReuse, let connection = pool.take(key) {
            send(head, over: connection, reused: true, context: context)
            return
        }
        guard let pinned = pinnedServer(head, address: key.address, port: key.port, pin: key.pin, context: context) else { return }
        let seconds = gate.config.gate.responseTimeoutSeconds
        let made = NIOLoopBoundBox<KeptConnection?>(nil, eventLoop: context.eventLoop)
        let loopPool = NIOLoopBound(pool, eventLoop: context.eventLoop)
        ClientBootstrap(group: context.eventLoop)
            .connectTimeout(.seconds(3))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let connection = KeptConnection(channel: channel, key: key, pool: loopPool.value)
                    made.value = connection
                    let (beforeCodec, afterCodec) = connection.handlers(idleSeconds: seconds)
                    let pipeline = channel.pipeline.syncOperations
                    try pipeline.addHandlers(try pinned.handlers())
                    try pipeline.addHandler(beforeCodec)
                    try pipeline.addHTTPClientHandlers()
                    try pipeline.addHandlers(afterCodec)
                }
            }
            .connect(host: key.address, port: key.port)
            .flatMap { _ in pinned.handshake }
            .assumeIsolated()
            .whenComplete { [self] result in
                switch result {
                case .success:
                    guard let connection = made.value else { return }
                    guard context.channel.isActive, state == .relaying else {
                        connection.channel.close(promise: nil)
                        return
                    }
                    send(head, over: connection, reused: false, context: context)
                case .failure(let error):
                    made.value?.channel.close(promise: nil)
                    serverUnreachable(head, error: error, isJob: true, context: context)
                }
            }
    }

    private func send(_ head: RequestHead, over connection: KeptConnection, reused: Bool, context: ChannelHandlerContext) {
        gate.metrics.recordJobConnection(kept: reused)
        kept = connection
        let exchange = KeptConnection.Exchange(apache: context, ended: { [self] in
            kept = nil
            state = .answered
            endOutput(context: context)
        }, failed: { [self] failure in
            kept = nil
            if failure.silent {
                serverSilent(for: gate.config.gate.responseTimeoutSeconds, .request, answered: failure.answered, head: head, context: context)
            } else if failure.answered {
                context.close(promise: nil)  // Apache sees the answer cut short
            } else if reused {
                // The server closed the kept connection meanwhile (the request may not have
                // reached it): once more, on a new connection, as a browser would.
                relay(head, to: connection.key, mayReuse: false, context: context)
            } else {
                answer(.badGateway, context: context)
            }
        })
        connection.send(head.forKeptConnection, exchange)
    }

    /// TLS to a job's server at address:port, to the certificate `pin` names; nil (and Apache
    /// answered) when the gate has no TLS.
    private func pinnedServer(_ head: RequestHead, address: String, port: Int, pin: String, context: ChannelHandlerContext) -> PinnedServer? {
        guard let tls = gate.tls else {
            gate.logger.error("no TLS for the servers of Slurm jobs: see hydra-gate's first lines", metadata: ["user": "\(head.person)"])
            answer(.badGateway, context: context)
            return nil
        }
        return PinnedServer(pin: pin, context: tls, eventLoop: context.eventLoop, logger: gate.logger, person: head.person, place: "\(address):\(port)")
    }

    /// Nothing moved between the gate and the server for `seconds`: logged; a request whose
    /// answer has not begun hears 504, anything else is closed.
    private func serverSilent(for seconds: Int, _ kind: Admission.Kind, answered: Bool, head: RequestHead, context: ChannelHandlerContext) {
        gate.logger.info("\(kind.rawValue) \(head.method) \(LogSafe.quote(head.target, limit: 200)): nothing moved for \(seconds) s; closed",
                         metadata: ["user": "\(head.person)"])
        if kind == .request && !answered {
            answer(.timeout(seconds: seconds), context: context)
        } else {
            context.close(promise: nil)
        }
    }

    /// The connection to the person's server failed (or its TLS handshake did).
    private func serverUnreachable(_ head: RequestHead, error: Error, isJob: Bool, context: ChannelHandlerContext) {
        gate.logger.warning("the connection to the server of \(head.person) failed: \(error)", metadata: ["user": "\(head.person)"])
        // A job that ended, or whose server did, leaves its endpoint behind: forgotten, so that
        // the front's warm path does not send the browser here again, and a browser goes to the
        // front, which starts another.
        if isJob { JobEndpoint.remove(for: head.person, config: gate.config) }
        answer(head.isPageVisit && isJob ? .toFront(target: head.target) : .badGateway, context: context)
    }

    /// Joins Apache's connection and the server's; the server's side is watched for silence.
    private func splice(_ upstream: Gate.Upstream, head: RequestHead, kind: Admission.Kind, context: ChannelHandlerContext) {
        state = .connecting
        let (apacheEnd, serverEnd) = Splice.pair()
        do {
            try context.pipeline.syncOperations.addHandler(apacheEnd, position: .after(self))
        } catch {
            context.close(promise: nil)
            return  // a connected socket closes itself
        }
        let seconds = kind == .websocket ? gate.config.gate.websocketIdleTimeoutSeconds : gate.config.gate.responseTimeoutSeconds
        let watch = ServerWatch { [self] answered in serverSilent(for: seconds, kind, answered: answered, head: head, context: context) }
        // A job's server: TLS first, to the certificate its start made and no other; the splice
        // begins once the handshake is done.
        let pinned: PinnedServer?
        if case .node(let address, let port, let pin) = upstream {
            guard let server = pinnedServer(head, address: address, port: port, pin: pin, context: context) else { return }
            pinned = server
        } else {
            pinned = nil
        }
        let serverHandlers = NIOLoopBound((watch, serverEnd, pinned), eventLoop: context.eventLoop)
        let bootstrap = ClientBootstrap(group: context.eventLoop)
            .channelOption(.allowRemoteHalfClosure, value: true)
            .connectTimeout(.seconds(3))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let (watch, serverEnd, pinned) = serverHandlers.value
                    if let pinned { try channel.pipeline.syncOperations.addHandlers(try pinned.handlers()) }
                    try channel.pipeline.syncOperations.addHandlers([IdleStateHandler(allTimeout: .seconds(Int64(seconds))), watch, serverEnd])
                }
            }
        let connected = switch upstream {
        case .localSocket(let connection): bootstrap.withConnectedSocket(connection.release())  // NIO's channel owns and closes it now
        case .node(let address, let port, _): bootstrap.connect(host: address, port: port)
        }
        let isJob = pinned != nil
        // A job's server is ready once the TLS handshake with the pinned certificate is done.
        let ready = pinned.map { pinned in connected.flatMap { server in pinned.handshake.map { server } } } ?? connected
        ready
            .assumeIsolated()
            .whenComplete { [self] result in
                switch result {
                case .success(let server):
                    guard context.channel.isActive, state == .connecting else {
                        server.close(promise: nil)
                        return
                    }
                    state = .forwarding
                    if let received { server.writeAndFlush(received, promise: nil) }
                    received = nil
                case .failure(let error):
                    serverUnreachable(head, error: error, isJob: isJob, context: context)
                }
            }
    }

    /// Answers Apache itself and ends the connection (what Apache still sends is ignored).
    private func answer(_ answer: GateAnswer, context: ChannelHandlerContext) {
        guard state != .answered else { return }
        state = .answered
        received = nil
        headTimer?.cancel()
        let bytes = answer.bytes()
        var buffer = context.channel.allocator.buffer(capacity: bytes.count)
        buffer.writeBytes(bytes)
        context.writeAndFlush(wrapOutboundOut(buffer)).assumeIsolated().whenComplete { [self] _ in endOutput(context: context) }
    }

    /// The answer is whole: the connection's output ends. Apache closes its end once it has the
    /// answer; a peer that does not is not kept.
    private func endOutput(context: ChannelHandlerContext) {
        context.close(mode: .output, promise: nil)
        _ = context.eventLoop.assumeIsolated().scheduleTask(in: .seconds(5)) { context.close(promise: nil) }
    }
}

/// On the server's side of a splice: notes whether the server has sent anything, and hands
/// the idle timer's event to the connection.
final class ServerWatch: ChannelInboundHandler {
    typealias InboundIn = NIOAny

    private var answered = false
    private let onSilence: (_ answered: Bool) -> Void

    init(onSilence: @escaping (_ answered: Bool) -> Void) {
        self.onSilence = onSilence
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        answered = true
        context.fireChannelRead(data)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .all? = event as? IdleStateHandler.IdleStateEvent {
            onSilence(answered)
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }
}

/// The two ends of a splice: what one channel reads, the other writes, with back-pressure (a
/// side reads only while the other can write) and half-closes passed through. After the
/// pattern of SwiftNIO's connect-proxy example.
final class Splice: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var partner: Splice?
    private var context: ChannelHandlerContext?
    private var pendingRead = false

    static func pair() -> (Splice, Splice) {
        let first = Splice()
        let second = Splice()
        first.partner = second
        second.partner = first
        return (first, second)
    }

    private var isWritable: Bool { context?.channel.isWritable ?? false }

    private func becameWritable() {
        if pendingRead {
            pendingRead = false
            context?.read()
        }
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        // The partner may have been waiting for this end to exist.
        if context.channel.isWritable { partner?.becameWritable() }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        partner = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        partner?.context?.write(data, promise: nil)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        partner?.context?.flush()
    }

    /// The other side has ended (a server that sent its answer and closed is reported as a
    /// hang-up, a full close): this side still delivers what it has, then ends its output. A
    /// full close here would drop the end of the answer. The connection ends for good once this
    /// side's peer closes too.
    private func partnerEnded() {
        guard let context else { return }
        let promise = context.eventLoop.makePromise(of: Void.self)
        promise.futureResult.assumeIsolated().whenFailure { _ in context.close(promise: nil) }
        context.close(mode: .output, promise: promise)
    }

    func channelInactive(context: ChannelHandlerContext) {
        partner?.partnerEnded()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .inputClosed? = event as? ChannelEvent {
            partner?.partnerEnded()
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        partner?.partnerEnded()
        context.close(promise: nil)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { partner?.becameWritable() }
        context.fireChannelWritabilityChanged()
    }

    func read(context: ChannelHandlerContext) {
        if partner?.isWritable == true {
            context.read()
        } else {
            pendingRead = true
        }
    }
}
