using System.Buffers;
using System.Buffers.Text;
using System.Globalization;
using System.IO.Pipelines;
using System.Runtime.CompilerServices;
using System.Text;
using Broker.Configuration;
using Broker.Diagnostics;
using Broker.Routing;
using Broker.Security;
using Broker.Stomp;
using Broker.Transports;
using Microsoft.Extensions.Logging;

namespace Broker.Sessions;

/// <summary>
/// One STOMP connection, whatever its transport: CONNECT and negotiation, subscriptions, acks, transactions,
/// receipts, heart-beats and ERROR-then-close. Frames are handled one at a time, in order, by the reader; deliveries
/// arrive from other connections' threads and go through the bounded <see cref="OutboundQueue"/> to the writer.
/// </summary>
internal sealed partial class StompSession : IDisposable
{
    private static long s_sessionCounter;
    private static long s_publisherCounter;
    private static readonly string s_nodePrefix = Convert.ToHexStringLower(Guid.NewGuid().ToByteArray().AsSpan(0, 3));

    private readonly StompTransport _transport;
    private readonly System.Net.IPAddress? _slotAddress;
    private readonly ListenerOptions _listener;
    private readonly BrokerOptions _options;
    private readonly SessionContext _context;
    private readonly SessionRegistry _registry;
    private readonly RateLimiter? _rateLimiter;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly OutboundQueue _outbound;
    private readonly StompParser _parser;
    // "<session id>-" and room for a delivery number after it, which only the writer writes (see WriteMessage).
    private readonly byte[] _messageId;
    private readonly int _messageIdPrefixLength;
    // Collections here are created on first use: an idle connection should cost little.
    private Dictionary<string, Subscription>? _subscriptions; // the reader's only
    private Dictionary<long, Delivery>? _unacked; // under the delivery lock
    private Dictionary<string, List<TransactionAction>>? _transactions;

    // How many publishes may wait for the backend's confirm before the reader waits for the oldest: back-pressure
    // on a producer that outruns RabbitMQ.
    private const int MaxUnconfirmedPublishes = 1024;

    // _lastReceivedTicks while the reader is handling frames rather than waiting for bytes: the client is not silent.
    private const long ReaderBusy = long.MaxValue;

    // The destination of the last SEND, as sent and as parsed and authorized (only the reader touches these).
    private Destination? _lastSendDestination;
    private byte[]? _lastSendDestinationUtf8;

    // Publishes handed to the backend and not yet confirmed, oldest first (only the reader touches it).
    private Queue<Task>? _unconfirmedPublishes;
    private Dictionary<string, string>? _temporaryQueues;
    private StompHeaderTable? _sendHeaders; // made by the first SEND: an idle or subscribe-only connection holds none
    private long _publisherNumber; // 0 until the first SEND (see CreateMessageAsync)

    private IMessageBackend _backend;
    private BrokerPrincipal? _principal;
    private ITimer? _deadline;
    private CancellationTokenSource? _heartBeatStop; // made when heart-beats start
    private State _state = State.AwaitingConnect;
    private StompVersion _version = StompVersion.V1_2;
    private NegotiatedHeartBeat _heartBeat;
    private long _deliverySequence;
    private bool _closing;
    private HashSet<Subscription>? _waitingForRoom;
    private HashSet<Subscription>? _waitingForAck;
    private CloseReason? _closeReason;
    private string _closeDescription = "client closed the connection";
    private long _lastReceivedTicks; // ReaderBusy while the reader handles what it read
    private long _lastSentTicks;
    private long _droppedMessages;

    /// <param name="transport">The connection.</param>
    /// <param name="listener">The settings of the listener it came in on.</param>
    /// <param name="context">What sessions share.</param>
    /// <param name="logger">Where the session logs.</param>
    /// <param name="slotAddress">
    /// The remote address whose connection slot the listener acquired (<see cref="SessionRegistry.TryAcquireConnection"/>)
    /// for this connection: the session holds it and gives it back when it ends, so no wrapper has to wait for it.
    /// </param>
    public StompSession(StompTransport transport, ListenerOptions listener, SessionContext context, ILogger logger, System.Net.IPAddress? slotAddress)
    {
        ArgumentNullException.ThrowIfNull(context);
        var options = context.Options;
        var time = context.Time;
        _transport = transport;
        _slotAddress = slotAddress;
        _listener = listener;
        _context = context;
        _options = options;
        _registry = context.Registry;
        _logger = logger;
        _time = time;
        _backend = context.VirtualHosts.TryGet(context.VirtualHosts.Default, out var backend) ? backend : throw new InvalidOperationException("no default virtual host");
        _rateLimiter = RateLimiter.Create(options.Limits.RateLimit, time);
        Id = $"session-{s_nodePrefix}-{Interlocked.Increment(ref s_sessionCounter)}";
        _messageIdPrefixLength = Id.Length + 1;
        _messageId = new byte[_messageIdPrefixLength + 20];
        Encoding.ASCII.GetBytes(Id, _messageId);
        _messageId[Id.Length] = (byte)'-';
        _outbound = new OutboundQueue(options.Outbound.MaxBufferedBytes);
        _parser = new StompParser(context.LimitsBeforeConnect);
        _lastReceivedTicks = _lastSentTicks = time.GetTimestamp();
    }

    private enum State : byte
    {
        AwaitingConnect,
        Connected,
        Disconnected,
    }

    /// <summary>The id sent in CONNECTED's <c>session</c> header.</summary>
    public string Id { get; }

    /// <summary>"tcp" or "ws".</summary>
    public string TransportName => _transport.Name;

    /// <summary>Topic messages dropped by the drop-oldest policy.</summary>
    public long DroppedMessages => Interlocked.Read(ref _droppedMessages);

    /// <summary>Runs the connection until it ends; never throws.</summary>
    /// <remarks>
    /// The reading half: reads and handles frames one at a time, in order. An idle connection waits here, so this
    /// method keeps few locals across the read (its state machine is part of what every idle connection costs), and
    /// the frames of one read are handled in <see cref="HandleFramesAsync"/>.
    /// </remarks>
    public async Task RunAsync(CancellationToken connectionClosed)
    {
        _registry.Add(this);
        _context.Metrics.ConnectionsOpened.Add(1, new KeyValuePair<string, object?>("transport", _transport.Name));
        BrokerLog.ConnectionOpened(_logger, Id, _transport.Name, _transport.RemoteAddress);
        var writer = RunWriterAsync();
        // CONNECT must arrive in time; the same timer later enforces a token's expiry.
        _deadline = _time.CreateTimer(
            static state => ((StompSession)state!).OnDeadline(), this, _options.Limits.ConnectTimeout, Timeout.InfiniteTimeSpan);
        try
        {
            while (!Volatile.Read(ref _closing))
            {
                ReadResult result;
                try
                {
                    // No token: the read ends when the connection does (the pipe completes) or when RequestClose
                    // cancels it, and a token would cost every idle connection a registration.
                    result = await _transport.Input.ReadAsync(CancellationToken.None);
                }
                catch (Exception ex) when (ex is OperationCanceledException or IOException or Microsoft.AspNetCore.Connections.ConnectionResetException)
                {
                    return;
                }

                if (!await HandleFramesAsync(result, connectionClosed))
                {
                    return;
                }
            }
        }
        catch (OperationCanceledException) when (connectionClosed.IsCancellationRequested)
        {
            // The client went away while a frame was being processed: an ordinary end.
        }
        catch (Exception ex)
        {
            // A bug, not bad input: say so to the client rather than vanish.
            BrokerLog.SessionFailed(_logger, Id, ex);
            RequestClose(CloseReason.Policy, "internal error", "The broker failed to process a frame; see its log.");
        }
        finally
        {
            if (_heartBeatStop is { } heartBeatStop)
            {
                await heartBeatStop.CancelAsync();
                heartBeatStop.Dispose();
            }

            if (_deadline is not null)
            {
                await _deadline.DisposeAsync();
            }

            try
            {
                await EndAsync(writer);
            }
            finally
            {
                _registry.ReleaseConnection(_slotAddress);
            }
        }
    }

    // Fires at the CONNECT deadline, and later at the token's expiry unless a refresh moved it.
    private void OnDeadline()
    {
        if (_state == State.AwaitingConnect)
        {
            _context.Metrics.LimitBreaches.Add(1, new KeyValuePair<string, object?>("limit", "connect-timeout"));
            RequestClose(CloseReason.Policy, "no CONNECT frame in time", $"A connection must send CONNECT within {_options.Limits.ConnectTimeout.TotalSeconds:0.#} s.");
        }
        else if (_principal?.ExpiresAt is { } expires && expires <= _time.GetUtcNow())
        {
            RequestClose(CloseReason.Policy, "token expired", "The connection's token expired. Refresh it before it expires with a SEND to /broker/token carrying the new token.");
        }
        else if (_principal?.ExpiresAt is not null)
        {
            ScheduleExpiry(); // the timer rounds to milliseconds and may fire just before the expiry: wait out the rest
        }
    }

    /// <summary>Returns the parser's and header table's pooled buffers; called once the connection has ended.</summary>
    public void Dispose()
    {
        _parser.Dispose();
        _sendHeaders?.Dispose();
    }

    /// <summary>
    /// Asks the connection to close: the ERROR (when a message is given) is queued after everything already queued,
    /// then the writer closes the transport. Safe from any thread; the first request wins.
    /// </summary>
    public void RequestClose(CloseReason reason, string? errorMessage, string? errorDetails = null, string? receiptId = null)
    {
        lock (_outbound.SyncRoot)
        {
            if (!RequestCloseLocked(reason, errorMessage, errorDetails, receiptId))
            {
                return;
            }
        }

        _transport.Input.CancelPendingRead();
    }

    // Caller holds the delivery lock. Returns false if the connection was already closing.
    private bool RequestCloseLocked(CloseReason reason, string? errorMessage, string? errorDetails, string? receiptId)
    {
        if (_closeReason is not null)
        {
            return false;
        }

        _closing = true;
        _closeReason = reason;
        _closeDescription = errorMessage ?? reason.ToString();
        if (errorMessage is not null)
        {
            _context.Metrics.Errors.Add(1, new KeyValuePair<string, object?>("kind", reason.ToString()));
            var frame = RenderError(errorMessage, errorDetails, receiptId);
            _outbound.Enqueue(new OutboundItem(OutboundKind.Frame, frame.Length, Frame: frame));
            BrokerLog.SentError(_logger, Id, errorMessage);
        }

        _outbound.Enqueue(OutboundItem.Close(reason));
        return true;
    }

    // Parses and handles the frames of one read, then gives the pipe back what was consumed. Returns false when the
    // connection is to end. Pooled: it completes asynchronously whenever a frame waits (a publish confirm, the rate
    // limit), and a connection should not allocate for that.
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<bool> HandleFramesAsync(ReadResult result, CancellationToken connectionClosed)
    {
        // While the reader handles what it read, the client is not silent, however long that takes (a throttle, a slow
        // backend): its heart-beats wait unread behind its frames. Its silence is counted again from the moment the
        // reader goes back to reading.
        var received = !result.Buffer.IsEmpty;
        if (received)
        {
            Volatile.Write(ref _lastReceivedTicks, ReaderBusy);
        }

        var buffer = result.Buffer;
        try
        {
            while (!Volatile.Read(ref _closing) && _parser.TryParse(ref buffer, out var frame))
            {
                if (!frame.IsHeartBeat)
                {
                    _context.Metrics.FramesIn.Add(1, new KeyValuePair<string, object?>("command", Name(frame.Command)));
                    if (_rateLimiter is not null && !await ThrottleAsync(frame, connectionClosed))
                    {
                        return false;
                    }

                    await HandleFrameAsync(frame, connectionClosed);
                }
            }

            if (_state == State.Disconnected)
            {
                RequestClose(CloseReason.Disconnect, errorMessage: null);
                return false;
            }

            return !result.IsCompleted && !result.IsCanceled;
        }
        catch (StompProtocolException ex)
        {
            if (ex.IsLimit)
            {
                _context.Metrics.LimitBreaches.Add(1, new KeyValuePair<string, object?>("limit", ex.Kind switch
                {
                    StompErrorKind.TooManyHeaders => "headers",
                    StompErrorKind.HeaderLineTooLong => "header-line",
                    _ => "frame-size",
                }));
            }

            RequestClose(ex.IsLimit ? CloseReason.TooBig : CloseReason.ProtocolError, ex.Message, DescribeParseError(ex));
            return false;
        }
        finally
        {
            if (received)
            {
                Volatile.Write(ref _lastReceivedTicks, _time.GetTimestamp());
            }

            _context.Metrics.BytesIn.Add(result.Buffer.Length - buffer.Length);
            _transport.Input.AdvanceTo(buffer.Start, buffer.End);
        }
    }

    private async ValueTask HandleFrameAsync(StompFrame frame, CancellationToken cancellationToken)
    {
        var receipt = frame.Headers.GetString(StompHeaderNames.Receipt);
        try
        {
            if (_state == State.Disconnected)
            {
                throw new SessionException("frame after DISCONNECT", $"A {Name(frame.Command)} frame arrived after DISCONNECT; a client must send nothing after DISCONNECT.");
            }

            if (_state == State.AwaitingConnect && frame.Command is not (StompCommand.Connect or StompCommand.Stomp))
            {
                throw new SessionException("expected CONNECT or STOMP frame", $"The first frame must be CONNECT or STOMP, not {Name(frame.Command)}.");
            }

            if (!StompCommands.IsClientCommand(frame.Command))
            {
                throw new SessionException($"unexpected {Name(frame.Command)} frame", $"{Name(frame.Command)} is a server frame; a client may not send it.");
            }

            switch (frame.Command)
            {
                case StompCommand.Connect or StompCommand.Stomp:
                    await HandleConnectAsync(frame);
                    return; // CONNECT's receipt header is not a receipt request.
                case StompCommand.Send:
                    await HandleSendAsync(frame, cancellationToken);
                    break;
                case StompCommand.Subscribe:
                    await HandleSubscribeAsync(frame, cancellationToken);
                    break;
                case StompCommand.Unsubscribe:
                    await HandleUnsubscribeAsync(frame);
                    break;
                case StompCommand.Ack or StompCommand.Nack:
                    HandleAck(frame);
                    break;
                case StompCommand.Begin:
                    HandleBegin(frame);
                    break;
                case StompCommand.Commit:
                    await HandleCommitAsync(frame, cancellationToken);
                    break;
                case StompCommand.Abort:
                    var aborted = RequireTransaction(frame); // validated even before any BEGIN
                    _transactions?.Remove(aborted);
                    break;
                case StompCommand.Disconnect:
                    _state = State.Disconnected;
                    break;
            }

            if (receipt is not null)
            {
                await AwaitPublishesAsync();
                SendReceipt(receipt);
            }
        }
        catch (SessionException ex)
        {
            RequestClose(ex.CloseReason, ex.Message, $"{ex.Details}\n\n{DescribeFrame(frame)}", receipt);
        }
        catch (DestinationException ex)
        {
            RequestClose(CloseReason.ProtocolError, ex.Message, $"{ex.Message}\n\n{DescribeFrame(frame)}", receipt);
        }
        catch (BackendUnavailableException ex)
        {
            // Never a RECEIPT for a message the backend did not take: the client learns it was not sent.
            RequestClose(CloseReason.Policy, ex.Message, $"{ex.Message}. The frame was not processed.\n\n{DescribeFrame(frame)}", receipt);
        }
        catch (StompProtocolException ex)
        {
            // Negotiation errors (version, heart-beat) surface here.
            RequestClose(CloseReason.ProtocolError, ex.Message, $"{ex.Message}\n\n{DescribeFrame(frame)}", receipt);
        }
    }

    private async ValueTask HandleConnectAsync(StompFrame frame)
    {
        if (_state != State.AwaitingConnect)
        {
            throw new SessionException("already connected", "CONNECT or STOMP may only be sent once per connection.");
        }

        var headers = frame.Headers;
        try
        {
            _version = NegotiateVersion(headers.GetString(StompHeaderNames.AcceptVersion));
        }
        catch (StompProtocolException ex)
        {
            RequestVersionError(ex.Message);
            return;
        }

        var virtualHost = headers.GetString(StompHeaderNames.Host) ?? _context.VirtualHosts.Default;
        if (!_context.VirtualHosts.TryGet(virtualHost, out var backend))
        {
            _context.Metrics.AuthenticationFailures.Add(1, new KeyValuePair<string, object?>("reason", "unknown-virtual-host"));
            throw new SessionException(
                $"unknown virtual host '{virtualHost}'",
                $"This broker serves the virtual hosts {string.Join(", ", _options.Security.VirtualHosts.Select(v => $"'{v}'"))}; send one of them in the CONNECT host header, or none for '{_context.VirtualHosts.Default}'.",
                CloseReason.Policy);
        }

        // Credentials: login/passcode, a JWT as passcode, an Authorization: Bearer header, or a token from the upgrade.
        var authorization = headers.GetString("authorization"u8) ?? headers.GetString("Authorization"u8);
        var bearer = authorization is not null && authorization.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase)
            ? authorization["Bearer ".Length..].Trim()
            : _transport.BearerToken;
        var authentication = await _context.Authenticator.AuthenticateAsync(
            headers.GetString(StompHeaderNames.Login), headers.GetString(StompHeaderNames.Passcode), bearer);
        if (authentication.Principal is not { } principal)
        {
            _context.Metrics.AuthenticationFailures.Add(1, new KeyValuePair<string, object?>("reason", "bad-credentials"));
            throw new SessionException(authentication.Failure!, "The CONNECT was refused: " + authentication.Failure, CloseReason.Policy);
        }

        _principal = principal;
        _backend = backend;
        ScheduleExpiry();

        headers.TryGetValue(StompHeaderNames.HeartBeat, out var heartBeatValue);
        var clientHeartBeat = _version == StompVersion.V1_0 ? HeartBeat.None : HeartBeat.Parse(heartBeatValue);
        var serverHeartBeat = _listener.HeartBeat.ServerHeader;
        var negotiated = serverHeartBeat.Negotiate(clientHeartBeat);
        _heartBeat = new NegotiatedHeartBeat(_listener.HeartBeat.Clamp(negotiated.OutgoingMs), _listener.HeartBeat.Clamp(negotiated.IncomingMs));

        _parser.Version = _version;
        _parser.Limits = _context.LimitsConnected;
        _state = State.Connected;

        var output = new ArrayBufferWriter<byte>(256);
        StompWriter.WriteCommand(output, StompCommand.Connected);
        StompWriter.WriteHeader(output, StompCommand.Connected, _version, "version", _version.ToHeaderValue());
        StompWriter.WriteHeader(output, StompCommand.Connected, _version, "heart-beat", serverHeartBeat.ToString());
        StompWriter.WriteHeader(output, StompCommand.Connected, _version, "server", ServerHeader);
        StompWriter.WriteHeader(output, StompCommand.Connected, _version, "session", Id);
        StompWriter.WriteEnd(output);
        EnqueueFrame(output.WrittenSpan.ToArray());

        BrokerLog.SessionConnected(
            _logger, Id, _transport.Name, _transport.RemoteAddress, _version.ToHeaderValue(),
            principal.Name, _heartBeat.OutgoingMs, _heartBeat.IncomingMs);

        if (_heartBeat.OutgoingMs > 0 || _heartBeat.IncomingMs > 0)
        {
            _heartBeatStop = new CancellationTokenSource();
            _ = RunHeartBeatsAsync(_heartBeatStop.Token);
        }
    }

    // The highest version both speak. A WebSocket subprotocol (v11.stomp, v10.stomp) caps it when accept-version allows
    // a version up to the cap; a client whose accept-version does not is served by its accept-version alone.
    private StompVersion NegotiateVersion(string? acceptVersion)
    {
        if (_transport.MaxVersion is { } max && max < StompVersions.All[^1])
        {
            StompVersion[] capped = [.. StompVersions.All.Where(v => v <= max)];
            try
            {
                return StompNegotiation.NegotiateVersion(acceptVersion, capped);
            }
            catch (StompProtocolException)
            {
            }
        }

        return StompNegotiation.NegotiateVersion(acceptVersion, StompVersions.All);
    }

    private void RequestVersionError(string message)
    {
        // STOMP 1.2: no common version => ERROR with a version header listing ours, a text/plain body, then close.
        var output = new ArrayBufferWriter<byte>(256);
        StompWriter.WriteCommand(output, StompCommand.Error);
        StompWriter.WriteHeader(output, StompCommand.Error, StompVersion.V1_0, "version", StompNegotiation.FormatSupported(StompVersions.All));
        StompWriter.WriteHeader(output, StompCommand.Error, StompVersion.V1_0, "content-type", "text/plain");
        StompWriter.WriteHeader(output, StompCommand.Error, StompVersion.V1_0, "message", message);
        StompWriter.WriteBody(output, StompCommand.Error, Encoding.UTF8.GetBytes(message));
        lock (_outbound.SyncRoot)
        {
            if (_closeReason is not null)
            {
                return;
            }

            var frame = output.WrittenSpan.ToArray();
            _outbound.Enqueue(new OutboundItem(OutboundKind.Frame, frame.Length, Frame: frame));
            RequestCloseLocked(CloseReason.ProtocolError, errorMessage: null, null, null);
        }

        BrokerLog.SentError(_logger, Id, message);
        _transport.Input.CancelPendingRead();
    }

    private async ValueTask HandleSendAsync(StompFrame frame, CancellationToken cancellationToken)
    {
        if (frame.Headers.TryGetValue(StompHeaderNames.Destination, out var raw) && raw.SequenceEqual(TokenDestination))
        {
            await RefreshTokenAsync(frame);
            return;
        }

        // A producer usually sends to one destination again and again: parsed and authorized once, not per message.
        Destination destination;
        if (_lastSendDestination is { } cached && raw.SequenceEqual(_lastSendDestinationUtf8))
        {
            destination = cached;
        }
        else
        {
            destination = RequireDestination(frame);
            if (destination.Kind is not (DestinationKind.TempQueue or DestinationKind.ReplyQueue))
            {
                Authorize(destination, write: true);
                (_lastSendDestination, _lastSendDestinationUtf8) = (destination, raw.ToArray());
            }
        }

        if (destination.Kind == DestinationKind.TempQueue)
        {
            // Sending to one's own /temp-queue/X reaches the temp queue of this connection.
            destination = new Destination(DestinationKind.ReplyQueue, await EnsureTemporaryQueueAsync(destination.Name, cancellationToken), "", destination.Value);
        }

        var message = await CreateMessageAsync(frame, destination.Value, cancellationToken);
        if (TryGetTransaction(frame, out var transaction))
        {
            AddToTransaction(transaction, TransactionAction.ForSend(destination, message));
            return;
        }

        await PublishAsync(destination, message, cancellationToken);
    }

    // Hands the message over and goes on to the next frame without waiting for the backend to confirm it (RabbitMQ
    // takes a round trip): confirms are awaited, oldest first, only before a RECEIPT, or when too many are open.
    private async ValueTask PublishAsync(Destination destination, BrokerMessage message, CancellationToken cancellationToken)
    {
        var taken = await _backend.PublishAsync(destination, message, cancellationToken);
        _context.Metrics.MessagesPublished.Add(
            1, new KeyValuePair<string, object?>("kind", DestinationKindNames[(int)destination.Kind]), new KeyValuePair<string, object?>("destination", destination.Value));
        if (taken.IsCompletedSuccessfully && _unconfirmedPublishes is null or { Count: 0 })
        {
            return;
        }

        var unconfirmed = _unconfirmedPublishes ??= new();
        unconfirmed.Enqueue(taken);
        while (unconfirmed.TryPeek(out var oldest) && (oldest.IsCompleted || unconfirmed.Count > MaxUnconfirmedPublishes))
        {
            // A failed one surfaces here as BackendUnavailableException: ERROR, then close.
            await unconfirmed.Dequeue();
        }
    }

    // Everything published so far is confirmed: a RECEIPT may be sent.
    private async ValueTask AwaitPublishesAsync()
    {
        while (_unconfirmedPublishes?.TryDequeue(out var oldest) == true)
        {
            await oldest;
        }
    }

    // The MESSAGE every subscriber gets: the SEND's headers minus the per-frame ones, and the body copied out of
    // the connection's buffer (the frame is a view that dies when the reader advances).
    private async ValueTask<BrokerMessage> CreateMessageAsync(StompFrame frame, string destination, CancellationToken cancellationToken)
    {
        var headers = frame.Headers;
        string? replyTo = null;
        if (headers.TryGetValue("reply-to"u8, out var replyToValue) && replyToValue.StartsWith("/temp-queue/"u8))
        {
            var name = Encoding.UTF8.GetString(replyToValue["/temp-queue/".Length..]);
            if (name.Length == 0 || name.Contains('/', StringComparison.Ordinal))
            {
                throw new SessionException("invalid reply-to", $"reply-to '{Encoding.UTF8.GetString(replyToValue)}' must be /temp-queue/NAME.");
            }

            replyTo = "/reply-queue/" + await EnsureTemporaryQueueAsync(name, cancellationToken);
        }

        _sendHeaders ??= new StompHeaderTable();
        _sendHeaders.Clear();
        for (var i = 0; i < headers.Count; i++)
        {
            var name = headers.GetName(i);
            if (IsPerFrameHeader(name))
            {
                continue;
            }

            if (replyTo is not null && name.SequenceEqual("reply-to"u8))
            {
                _sendHeaders.Add("reply-to", replyTo);
                replyTo = null; // only the first occurrence counts
                continue;
            }

            _sendHeaders.Add(name, headers.GetValue(i));
        }

        var template = new StompMessageTemplate(new StompHeaders(_sendHeaders), frame.Body.ToArray());
        // Numbered at its first SEND, so a node's publishing connections count 1, 2, 3… whatever else connects between them.
        if (_publisherNumber == 0)
        {
            _publisherNumber = Interlocked.Increment(ref s_publisherCounter);
        }

        return new BrokerMessage(destination, template) { Origin = _publisherNumber };
    }

    // Headers that belong to the SEND frame itself, or that the broker sets on MESSAGE.
    private static bool IsPerFrameHeader(ReadOnlySpan<byte> name) =>
        name.SequenceEqual(StompHeaderNames.Receipt) || name.SequenceEqual(StompHeaderNames.Transaction)
        || name.SequenceEqual("redelivered"u8);

    private async ValueTask<string> EnsureTemporaryQueueAsync(string name, CancellationToken cancellationToken)
    {
        if (_temporaryQueues?.TryGetValue(name, out var fullName) == true)
        {
            return fullName;
        }

        CheckSubscriptionLimit();
        fullName = $"{Id}-{name}";
        var subscriptionId = "/temp-queue/" + name;
        var destination = new Destination(DestinationKind.TempQueue, fullName, "", subscriptionId);
        var subscription = new Subscription(this, subscriptionId, destination, AckMode.Auto, prefetch: 0);
        (_subscriptions ??= new(StringComparer.Ordinal))[subscriptionId] = subscription;
        (_temporaryQueues ??= new(StringComparer.Ordinal))[name] = fullName;
        AttachBinding(subscription, await _backend.SubscribeAsync(destination, new SubscriptionOptions(subscriptionId, ClientAck: false, Prefetch: 0), subscription, cancellationToken));
        return fullName;
    }

    private async ValueTask HandleSubscribeAsync(StompFrame frame, CancellationToken cancellationToken)
    {
        var destination = RequireDestination(frame);
        var id = frame.Headers.GetString(StompHeaderNames.Id);
        if (id is null)
        {
            if (_version != StompVersion.V1_0)
            {
                throw new SessionException("SUBSCRIBE frame has no id header", "SUBSCRIBE requires an id header (STOMP 1.1 and later).");
            }

            id = destination.Value; // 1.0 made id optional; RabbitMQ uses the destination.
        }

        CheckSubscriptionLimit();

        if (_subscriptions?.ContainsKey(id) == true)
        {
            throw new SessionException($"duplicate subscription id '{id}'", $"This connection already has a subscription with id '{id}'; ids must be unique per connection.");
        }

        var ackMode = frame.Headers.GetString(StompHeaderNames.Ack) switch
        {
            null or "auto" => AckMode.Auto,
            "client" => AckMode.Client,
            "client-individual" => AckMode.ClientIndividual,
            var other => throw new SessionException($"invalid ack mode '{other}'", "The ack header of SUBSCRIBE must be auto, client or client-individual."),
        };

        var prefetch = 0;
        if (frame.Headers.GetString("prefetch-count"u8) is { } prefetchText
            && (!int.TryParse(prefetchText, NumberStyles.None, CultureInfo.InvariantCulture, out prefetch)))
        {
            throw new SessionException($"invalid prefetch-count '{prefetchText}'", "prefetch-count must be a non-negative integer (0 means no limit).");
        }

        if (destination.Kind is DestinationKind.TempQueue or DestinationKind.ReplyQueue)
        {
            throw new SessionException(
                $"cannot subscribe to '{destination.Value}'",
                "Temporary queues are created by sending with reply-to: /temp-queue/NAME; their messages arrive on subscription /temp-queue/NAME.");
        }

        Authorize(destination, write: false);
        var subscription = new Subscription(this, id, destination, ackMode, prefetch);
        (_subscriptions ??= new(StringComparer.Ordinal))[id] = subscription;
        try
        {
            AttachBinding(subscription, await _backend.SubscribeAsync(destination, ReadSubscriptionOptions(frame, id, ackMode, prefetch), subscription, cancellationToken));
        }
        catch
        {
            _subscriptions?.Remove(id);
            throw;
        }
    }

    // A backend may deliver before SubscribeAsync returns (RabbitMQ sends a durable queue's backlog as soon as the
    // consumer is registered). A message refused then for want of room waits for a wakeup, and a wakeup that came
    // before the binding was set found nothing to call: the subscription stalled on its backlog. So the binding gets one
    // wakeup as soon as it is known.
    private static void AttachBinding(Subscription subscription, IConsumerBinding binding)
    {
        subscription.Binding = binding;
        binding.OnRoomAvailable();
    }

    // SUBSCRIBE frames and temporary queues (each one a subscription) count alike.
    private void CheckSubscriptionLimit()
    {
        if (_subscriptions?.Count >= _options.Limits.MaxSubscriptionsPerConnection)
        {
            _context.Metrics.LimitBreaches.Add(1, new KeyValuePair<string, object?>("limit", "subscriptions"));
            throw new SessionException("too many subscriptions", $"A connection may have at most {_options.Limits.MaxSubscriptionsPerConnection} subscriptions, temporary queues included.", CloseReason.Policy);
        }
    }

    // RabbitMQ's STOMP plugin headers for durable subscriptions: durable (or the older persistent), auto-delete, x-queue-name.
    private static SubscriptionOptions ReadSubscriptionOptions(StompFrame frame, string id, AckMode ackMode, int prefetch)
    {
        var headers = frame.Headers;
        var durable = headers.GetString("durable"u8) is "true" || headers.GetString("persistent"u8) is "true";
        return new SubscriptionOptions(
            id,
            ClientAck: ackMode != AckMode.Auto,
            prefetch,
            durable,
            AutoDelete: headers.GetString("auto-delete"u8) is "true",
            QueueName: headers.GetString("x-queue-name"u8));
    }

    private async ValueTask HandleUnsubscribeAsync(StompFrame frame)
    {
        var id = frame.Headers.GetString(StompHeaderNames.Id)
            ?? (_version == StompVersion.V1_0 ? frame.Headers.GetString(StompHeaderNames.Destination) : null)
            ?? throw new SessionException("UNSUBSCRIBE frame has no id header", "UNSUBSCRIBE requires the id of the subscription to end.");
        if (_subscriptions is null || !_subscriptions.Remove(id, out var subscription))
        {
            throw new SessionException($"unknown subscription id '{id}'", $"This connection has no subscription with id '{id}'.");
        }

        await CloseSubscriptionAsync(subscription);
    }

    // Stops deliveries, then gives every unacknowledged queue message back to its queue, marked redelivered.
    private async ValueTask CloseSubscriptionAsync(Subscription subscription)
    {
        if (subscription.Binding is { } binding)
        {
            await binding.DisposeAsync();
        }

        List<Delivery> abandoned;
        lock (_outbound.SyncRoot)
        {
            subscription.IsClosed = true;
            abandoned = [.. subscription.Unacked];
            subscription.Unacked.Clear();
            foreach (var delivery in abandoned)
            {
                _unacked?.Remove(delivery.Id);
            }
        }

        foreach (var delivery in abandoned)
        {
            delivery.Settlement?.Nack(requeue: true);
        }
    }

    private void HandleAck(StompFrame frame)
    {
        var isAck = frame.Command == StompCommand.Ack;
        var idHeader = _version == StompVersion.V1_2 ? StompHeaderNames.Id : StompHeaderNames.MessageId;
        var id = frame.Headers.GetString(idHeader)
            ?? throw new SessionException(
                $"{Name(frame.Command)} frame has no {Encoding.ASCII.GetString(idHeader)} header",
                $"{Name(frame.Command)} must name the message with the {Encoding.ASCII.GetString(idHeader)} header (the ack header of the MESSAGE).");
        var deliveryId = ParseDeliveryId(id);
        var requeue = frame.Headers.GetString("requeue"u8) is not "false";
        lock (_outbound.SyncRoot)
        {
            if (deliveryId < 0 || _unacked?.ContainsKey(deliveryId) != true)
            {
                throw new SessionException($"unknown ack id '{id}'", $"No unacknowledged message has ack id '{id}' on this connection (already acknowledged, or never sent).");
            }
        }

        if (TryGetTransaction(frame, out var transaction))
        {
            AddToTransaction(transaction, TransactionAction.ForAck(deliveryId, isAck, requeue));
            return;
        }

        Settle(deliveryId, isAck, requeue);
    }

    // ACK or NACK one delivery; under "client" mode also every earlier one of its subscription.
    private void Settle(long deliveryId, bool ack, bool requeue)
    {
        List<Delivery> settled = [];
        Subscription? subscription;
        lock (_outbound.SyncRoot)
        {
            if (_unacked is null || !_unacked.TryGetValue(deliveryId, out var target))
            {
                return; // settled meanwhile (a transaction acked it twice, or a cumulative ack covered it)
            }

            subscription = target.Subscription;
            if (subscription.AckMode == AckMode.Client)
            {
                while (subscription.Unacked.First is { } first)
                {
                    settled.Add(first.Value);
                    subscription.Unacked.RemoveFirst();
                    _unacked.Remove(first.Value.Id);
                    if (first.Value == target)
                    {
                        break;
                    }
                }
            }
            else
            {
                subscription.Unacked.Remove(target.Node!);
                _unacked.Remove(deliveryId);
                settled.Add(target);
            }
        }

        (ack ? _context.Metrics.MessagesAcked : _context.Metrics.MessagesNacked).Add(settled.Count);
        if (!ack && !requeue)
        {
            _context.Metrics.MessagesDropped.Add(settled.Count, new KeyValuePair<string, object?>("reason", "nack"));
        }

        foreach (var delivery in settled)
        {
            if (ack)
            {
                delivery.Settlement?.Ack();
            }
            else
            {
                delivery.Settlement?.Nack(requeue);
            }
        }

        subscription.Binding?.OnRoomAvailable();

        // The unacked limit is per connection: other subscriptions' queues may have been held back by this one.
        Subscription[] waiting;
        lock (_outbound.SyncRoot)
        {
            waiting = _waitingForAck is { Count: > 0 } set ? [.. set] : [];
            _waitingForAck?.Clear();
        }

        foreach (var other in waiting)
        {
            if (other != subscription)
            {
                other.Binding?.OnRoomAvailable();
            }
        }
    }

    private void HandleBegin(StompFrame frame)
    {
        var id = RequireTransaction(frame);
        _transactions ??= new(StringComparer.Ordinal);
        if (_transactions.Count >= _options.Limits.MaxTransactionsPerConnection)
        {
            _context.Metrics.LimitBreaches.Add(1, new KeyValuePair<string, object?>("limit", "transactions"));
            throw new SessionException("too many open transactions", $"A connection may have at most {_options.Limits.MaxTransactionsPerConnection} open transactions.", CloseReason.Policy);
        }

        if (!_transactions.TryAdd(id, []))
        {
            throw new SessionException($"transaction '{id}' already begun", $"A transaction with id '{id}' is already open on this connection.");
        }
    }

    private async ValueTask HandleCommitAsync(StompFrame frame, CancellationToken cancellationToken)
    {
        var id = RequireTransaction(frame);
        List<TransactionAction>? actions = null;
        _transactions?.Remove(id, out actions);
        foreach (var action in actions!)
        {
            if (action.Message is not null)
            {
                await PublishAsync(action.Destination, action.Message, cancellationToken);
            }
            else
            {
                Settle(action.DeliveryId, action.IsAck, action.Requeue);
            }
        }
    }

    private string RequireTransaction(StompFrame frame)
    {
        var id = frame.Headers.GetString(StompHeaderNames.Transaction)
            ?? throw new SessionException($"{Name(frame.Command)} frame has no transaction header", $"{Name(frame.Command)} requires a transaction header.");
        if (frame.Command != StompCommand.Begin && _transactions?.ContainsKey(id) != true)
        {
            throw new SessionException($"unknown transaction '{id}'", $"No transaction with id '{id}' is open on this connection.");
        }

        return id;
    }

    private bool TryGetTransaction(StompFrame frame, out List<TransactionAction> actions)
    {
        actions = null!;
        var id = frame.Headers.GetString(StompHeaderNames.Transaction);
        if (id is null)
        {
            return false;
        }

        if (_transactions?.TryGetValue(id, out actions!) != true)
        {
            throw new SessionException($"unknown transaction '{id}'", $"No transaction with id '{id}' is open on this connection; send BEGIN first.");
        }

        return true;
    }

    private static Destination RequireDestination(StompFrame frame)
    {
        var value = frame.Headers.GetString(StompHeaderNames.Destination)
            ?? throw new SessionException($"{Name(frame.Command)} frame has no destination header", $"{Name(frame.Command)} requires a destination header.");
        if (!Destination.TryParse(value, out var destination, out var error))
        {
            throw new SessionException(error, error);
        }

        return destination;
    }

    /// <summary>
    /// Called by the backend, on any thread, to hand this session a message for <paramref name="subscription"/>.
    /// Queue messages (with a settlement) are refused when the subscription's prefetch or the outbound buffer is full;
    /// topic messages meet the slow-consumer policy instead.
    /// </summary>
    public bool TryDeliver(Subscription subscription, BrokerMessage message, bool redelivered, IDeliverySettlement? settlement)
    {
        var closeRequested = false;
        lock (_outbound.SyncRoot)
        {
            if (_closing || subscription.IsClosed)
            {
                return false;
            }

            var size = message.Size;
            var isQueueMessage = settlement is not null;
            if (subscription.AckMode != AckMode.Auto && _unacked?.Count >= _options.Limits.MaxUnackedPerConnection)
            {
                if (isQueueMessage)
                {
                    (_waitingForAck ??= []).Add(subscription); // woken by the next ACK or NACK, on whichever subscription
                    return false; // waits in its queue until this connection acks something
                }

                _context.Metrics.LimitBreaches.Add(1, new KeyValuePair<string, object?>("limit", "unacked"));
                closeRequested = RequestCloseLocked(
                    CloseReason.Policy, "too many unacknowledged messages",
                    $"A connection may hold at most {_options.Limits.MaxUnackedPerConnection} unacknowledged messages; ACK them.", receiptId: null);
                if (closeRequested)
                {
                    _transport.Input.CancelPendingRead();
                }

                return true;
            }

            if (isQueueMessage)
            {
                if (subscription.AckMode != AckMode.Auto && subscription.Prefetch > 0 && subscription.Unacked.Count >= subscription.Prefetch)
                {
                    return false;
                }

                if (!_outbound.HasRoomFor(size))
                {
                    (_waitingForRoom ??= []).Add(subscription);
                    return false;
                }
            }
            else if (!_outbound.HasRoomFor(size))
            {
                if (_options.Outbound.SlowConsumerPolicy == SlowConsumerPolicy.DropOldest)
                {
                    var dropped = _outbound.DropOldestFor(size);
                    Interlocked.Add(ref _droppedMessages, dropped < 0 ? 1 : dropped);
                    _context.Metrics.MessagesDropped.Add(dropped < 0 ? 1 : dropped, new KeyValuePair<string, object?>("reason", "slow-consumer"));
                    _context.Metrics.SlowConsumers.Add(1, new KeyValuePair<string, object?>("policy", "drop-oldest"));
                    if (dropped < 0)
                    {
                        return true; // nothing older to drop: this one goes
                    }
                }
                else
                {
                    BrokerLog.SlowConsumer(_logger, Id, _outbound.BufferedBytes, "disconnect");
                    _context.Metrics.SlowConsumers.Add(1, new KeyValuePair<string, object?>("policy", "disconnect"));
                    closeRequested = RequestCloseLocked(
                        CloseReason.Policy,
                        "slow consumer",
                        $"The connection's outbound buffer ({_outbound.MaxBytes} bytes) is full: it does not read its messages fast enough.",
                        receiptId: null);
                }
            }

            if (!closeRequested)
            {
                var deliveryId = ++_deliverySequence;
                if (subscription.AckMode != AckMode.Auto)
                {
                    var delivery = new Delivery(deliveryId, subscription, settlement);
                    delivery.Node = subscription.Unacked.AddLast(delivery);
                    (_unacked ??= []).Add(deliveryId, delivery);
                }

                _context.Metrics.MessagesDelivered.Add(1);
                if (redelivered)
                {
                    _context.Metrics.MessagesRedelivered.Add(1);
                }

                _outbound.Enqueue(new OutboundItem(
                    OutboundKind.Message, size, Message: message, Subscription: subscription, DeliveryId: deliveryId, Redelivered: redelivered,
                    Settlement: subscription.AckMode == AckMode.Auto ? settlement : null, IsDroppable: !isQueueMessage));
                return true;
            }
        }

        _transport.Input.CancelPendingRead();
        return true;
    }

    private static ReadOnlySpan<byte> TokenDestination => "/broker/token"u8;

    // In-band token refresh: SEND to /broker/token with the new token in a `token` header or as the body. The new token
    // must be valid and name the same user; the connection then lives until it expires instead.
    private async ValueTask RefreshTokenAsync(StompFrame frame)
    {
        var token = frame.Headers.GetString("token"u8) ?? Encoding.UTF8.GetString(frame.Body).Trim();
        if (token.Length == 0)
        {
            throw new SessionException("no token", "A SEND to /broker/token carries the new token in a token header or as its body.", CloseReason.Policy);
        }

        var refreshed = await _context.Authenticator.RefreshAsync(_principal!, token);
        if (refreshed.Principal is not { } principal)
        {
            throw new SessionException(refreshed.Failure!, "The token refresh was refused: " + refreshed.Failure, CloseReason.Policy);
        }

        _principal = principal;
        (_lastSendDestination, _lastSendDestinationUtf8) = (null, null); // permissions may have changed
        ScheduleExpiry();
    }

    private void ScheduleExpiry()
    {
        if (_principal?.ExpiresAt is { } expires)
        {
            var due = expires - _time.GetUtcNow();
            due = due < TimeSpan.Zero ? TimeSpan.Zero : due;
            if (_deadline is null)
            {
                _deadline = _time.CreateTimer(static state => ((StompSession)state!).OnDeadline(), this, due, Timeout.InfiniteTimeSpan);
            }
            else
            {
                _deadline.Change(due, Timeout.InfiniteTimeSpan);
            }
        }
        else
        {
            // Nothing to time any more: an idle connection keeps no timer. Only the reader gets here (CONNECT or a
            // refresh), before RunAsync's own disposal.
            _deadline?.Dispose();
            _deadline = null;
        }
    }

    private void Authorize(Destination destination, bool write)
    {
        var principal = _principal!;
        var allowed = write ? _context.Authorizer.CanWrite(principal, destination.Value) : _context.Authorizer.CanRead(principal, destination.Value);
        if (!allowed)
        {
            var operation = write ? "send to" : "subscribe to";
            _context.Metrics.AuthorizationDenials.Add(1, new KeyValuePair<string, object?>("operation", write ? "send" : "subscribe"));
            throw new SessionException(
                $"access refused: '{principal.Name}' may not {operation} '{destination.Value}'",
                $"The user '{principal.Name}' has no permission to {operation} '{destination.Value}'. Nothing was {(write ? "published" : "subscribed")}.",
                CloseReason.Policy);
        }
    }

    private void AddToTransaction(List<TransactionAction> transaction, TransactionAction action)
    {
        if (transaction.Count >= _options.Limits.MaxFramesPerTransaction)
        {
            _context.Metrics.LimitBreaches.Add(1, new KeyValuePair<string, object?>("limit", "transaction-frames"));
            throw new SessionException("transaction too large", $"A transaction may hold at most {_options.Limits.MaxFramesPerTransaction} frames; COMMIT or ABORT it.", CloseReason.Policy);
        }

        transaction.Add(action);
    }

    // The per-connection token bucket: a frame over the rate waits (Throttle) or ends the connection (Disconnect).
    private async ValueTask<bool> ThrottleAsync(StompFrame frame, CancellationToken cancellationToken)
    {
        var bytes = frame.Body.Length + 64 + (frame.Headers.Count * 16);
        var wait = _rateLimiter!.Take(bytes);
        if (wait <= TimeSpan.Zero)
        {
            return true;
        }

        _context.Metrics.LimitBreaches.Add(1, new KeyValuePair<string, object?>("limit", "rate"));
        if (_options.Limits.RateLimit.OnBreach == RateLimitAction.Disconnect)
        {
            RequestClose(CloseReason.Policy, "rate limit exceeded", $"This connection sends faster than allowed ({_options.Limits.RateLimit.FramesPerSecond} frames/s, {_options.Limits.RateLimit.BytesPerSecond} bytes/s).");
            return false;
        }

        // Meanwhile its frames and heart-beats wait unread: the client is held back, not silent (see HandleFramesAsync).
        await Task.Delay(wait, _time, cancellationToken);
        return true;
    }

    private void SendReceipt(string receiptId)
    {
        var output = new ArrayBufferWriter<byte>(64 + receiptId.Length);
        StompWriter.WriteCommand(output, StompCommand.Receipt);
        StompWriter.WriteHeader(output, StompCommand.Receipt, _version, "receipt-id", receiptId);
        StompWriter.WriteEnd(output);
        EnqueueFrame(output.WrittenSpan.ToArray());
    }

    // RECEIPT and CONNECTED: no policy drops them, but a client that asks for receipts and never reads them must not
    // grow its buffer without bound. Deliveries stay within the bound, so these get a second bound's worth of room;
    // the exception is a single delivery larger than the bound, let into an empty buffer (HasRoomFor), which must not
    // make the next RECEIPT look like a client that does not read.
    private void EnqueueFrame(byte[] frame)
    {
        lock (_outbound.SyncRoot)
        {
            if (_outbound.BufferedBytes + frame.Length <= 2 * _outbound.MaxBytes || _outbound.Count <= 1)
            {
                _outbound.Enqueue(new OutboundItem(OutboundKind.Frame, frame.Length, Frame: frame));
                return;
            }

            BrokerLog.SlowConsumer(_logger, Id, _outbound.BufferedBytes, "disconnect");
            _context.Metrics.SlowConsumers.Add(1, new KeyValuePair<string, object?>("policy", "disconnect"));
            if (!RequestCloseLocked(
                CloseReason.Policy, "slow consumer", $"The connection's outbound buffer ({_outbound.MaxBytes} bytes) is full: it does not read what the broker sends.", receiptId: null))
            {
                return;
            }
        }

        _transport.Input.CancelPendingRead();
    }

    private byte[] RenderError(string message, string? details, string? receiptId)
    {
        // Before CONNECTED the client cannot know the negotiated version, and clients (stomp.js among them) do not
        // unescape yet: write 1.0 style, where ':' stays as it is (CR and LF are still escaped, so nothing is injected).
        var version = _state == State.AwaitingConnect ? StompVersion.V1_0 : _version;
        var output = new ArrayBufferWriter<byte>(256);
        StompWriter.WriteCommand(output, StompCommand.Error);
        StompWriter.WriteHeader(output, StompCommand.Error, version, "message", message);
        if (receiptId is not null)
        {
            StompWriter.WriteHeader(output, StompCommand.Error, version, "receipt-id", receiptId);
        }

        StompWriter.WriteHeader(output, StompCommand.Error, _version, "content-type", "text/plain");
        StompWriter.WriteBody(output, StompCommand.Error, Encoding.UTF8.GetBytes(details ?? message));
        return output.WrittenSpan.ToArray();
    }

    private long ParseDeliveryId(string id)
    {
        var utf8 = Encoding.UTF8.GetBytes(id);
        var prefix = _messageId.AsSpan(0, _messageIdPrefixLength);
        if (!utf8.AsSpan().StartsWith(prefix))
        {
            return -1;
        }

        return Utf8Parser.TryParse(utf8.AsSpan(prefix.Length), out long value, out var consumed) && consumed == utf8.Length - prefix.Length
            ? value
            : -1;
    }

    private static string Name(StompCommand command) => CommandNames[(int)command];

    // Metric tags are taken for every frame and message: their strings are made once, not per use (the enum values
    // run from 0 without gaps, so a value is its own index).
    private static readonly string[] CommandNames =
        [.. Enum.GetValues<StompCommand>().Select(command => Encoding.ASCII.GetString(StompCommands.GetName(command)))];

    private static readonly string[] DestinationKindNames = [.. Enum.GetValues<DestinationKind>().Select(kind => kind.ToString())];

    private static string DescribeParseError(StompProtocolException ex) =>
        $"The broker could not parse a frame: {ex.Message}. The connection is closed.";

    // The failing frame, for the ERROR body: its command and headers, passcodes and tokens masked.
    private static string DescribeFrame(StompFrame frame)
    {
        var text = new StringBuilder("The failing frame:\n-----\n").Append(Name(frame.Command)).Append('\n');
        var headers = frame.Headers;
        for (var i = 0; i < headers.Count && i < 32; i++)
        {
            var name = Encoding.UTF8.GetString(headers.GetName(i));
            var value = name.ToUpperInvariant() is "PASSCODE" or "AUTHORIZATION" or "TOKEN" ? "***" : Encoding.UTF8.GetString(headers.GetValue(i));
            text.Append(name).Append(':').Append(value.Length > 200 ? value[..200] + "..." : value).Append('\n');
        }

        return text.Append("-----").ToString();
    }

    private const string ServerHeader = "StompBroker/" + ThisAssemblyVersion;

    private const string ThisAssemblyVersion = "0.1.0";
}
