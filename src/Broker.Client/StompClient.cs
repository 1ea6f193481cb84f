using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Broker.Client.Internal;
using Broker.Stomp;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Broker.Client;

/// <summary>
/// A STOMP 1.2 client for StompBroker and any STOMP broker (RabbitMQ's STOMP and Web-STOMP plugins among them) over
/// <c>tcp://</c>, <c>ssl://</c>, <c>ws://</c> and <c>wss://</c>. When the connection is lost it reconnects with backoff,
/// asks <see cref="StompClientOptions.CredentialProvider"/> for fresh credentials, and subscribes again; operations made
/// meanwhile wait until it is back. Thread-safe: one client is meant to be shared by a whole application.
/// </summary>
public sealed partial class StompClient : IAsyncDisposable
{
    private readonly ILogger _logger;
    private readonly ConcurrentDictionary<string, StompSubscription> _subscriptions = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, TaskCompletionSource<StompMessage>> _requests = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _disposing = new();
    private readonly Lock _stateGate = new();
    private readonly string _replyQueue = "/temp-queue/replies-" + Guid.NewGuid().ToString("N")[..8];
    private TaskCompletionSource _connected = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private StompConnection? _connection;
    private StompConnectionState _state;
    private long _epoch;
    private long _sequence;

    /// <summary>Creates a client; call <see cref="ConnectAsync(CancellationToken)"/> to connect.</summary>
    public StompClient(StompClientOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(options.Uri);
        Options = options;
        _logger = options.LoggerFactory?.CreateLogger<StompClient>() ?? NullLogger<StompClient>.Instance;
    }

    /// <summary>Raised on every change of <see cref="State"/>, on the thread that made it.</summary>
    public event EventHandler<StompConnectionStateChangedEventArgs>? StateChanged;

    /// <summary>The options the client was made with.</summary>
    public StompClientOptions Options { get; }

    /// <summary>Where the connection stands.</summary>
    public StompConnectionState State
    {
        get
        {
            lock (_stateGate)
            {
                return _state;
            }
        }
    }

    /// <summary>The broker's <c>session</c> header of the current connection.</summary>
    public string? SessionId => _connection?.SessionId;

    /// <summary>The broker's <c>server</c> header, such as "StompBroker/0.1.0".</summary>
    public string? Server => _connection?.Server;

    /// <summary>The negotiated STOMP version of the current connection.</summary>
    public StompVersion? Version => _connection?.Version;

    /// <summary>Creates a client and connects it.</summary>
    /// <exception cref="StompConnectionException">The broker cannot be reached.</exception>
    /// <exception cref="StompErrorException">The broker refused the CONNECT (bad credentials, say).</exception>
    public static async Task<StompClient> ConnectAsync(StompClientOptions options, CancellationToken cancellationToken = default)
    {
        var client = new StompClient(options);
        try
        {
            await client.ConnectAsync(cancellationToken);
            return client;
        }
        catch
        {
            await client.DisposeAsync();
            throw;
        }
    }

    /// <summary>Connects (the first time). Later losses are repaired by reconnecting on its own.</summary>
    /// <exception cref="StompConnectionException">The broker cannot be reached.</exception>
    /// <exception cref="StompErrorException">The broker refused the CONNECT.</exception>
    public async Task ConnectAsync(CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposing.IsCancellationRequested, this);
        SetState(StompConnectionState.Connecting, null);
        try
        {
            await OpenAsync(cancellationToken);
        }
        catch (Exception ex)
        {
            SetState(StompConnectionState.Disconnected, ex);
            throw;
        }
    }

    /// <summary>SEND bytes.</summary>
    public ValueTask SendAsync(string destination, ReadOnlyMemory<byte> body, StompSendOptions? options = null, CancellationToken cancellationToken = default) =>
        SendCoreAsync(destination, body, options, transaction: null, cancellationToken);

    /// <summary>SEND text (UTF-8, <c>content-type: text/plain;charset=utf-8</c> unless the options say otherwise).</summary>
    public ValueTask SendAsync(string destination, string body, StompSendOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(body);
        return SendCoreAsync(destination, Encoding.UTF8.GetBytes(body), WithTextContentType(options), transaction: null, cancellationToken);
    }

    /// <summary>SEND an object serialized with System.Text.Json (<c>content-type: application/json</c>).</summary>
    public ValueTask SendJsonAsync<T>(string destination, T value, StompSendOptions? options = null, CancellationToken cancellationToken = default)
    {
        var body = JsonSerializer.SerializeToUtf8Bytes(value, Options.JsonOptions);
        return SendCoreAsync(destination, body, (options ?? new()) with { ContentType = options?.ContentType ?? "application/json" }, transaction: null, cancellationToken);
    }

    /// <summary>SUBSCRIBE; read the messages from the returned subscription, and dispose it to UNSUBSCRIBE.</summary>
    /// <remarks>Completes once the broker has confirmed the subscription (with a RECEIPT), so nothing sent afterwards is missed.</remarks>
    public async ValueTask<StompSubscription> SubscribeAsync(string destination, StompSubscribeOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(destination);
        options ??= new StompSubscribeOptions();
        var id = "sub-" + Next();
        var subscription = new StompSubscription(this, id, destination, options, options.BufferSize ?? Options.SubscriptionBufferSize);
        _subscriptions[id] = subscription;
        try
        {
            var connection = await GetConnectionAsync(cancellationToken);
            await connection.SendAsync(StompCommand.Subscribe, SubscribeHeaders(subscription), default, waitForReceipt: true, cancellationToken);
            return subscription;
        }
        catch
        {
            _subscriptions.TryRemove(id, out _);
            subscription.Complete();
            throw;
        }
    }

    /// <summary>
    /// SUBSCRIBE with a handler, called for one message at a time. In client ack modes a message is ACKed when the handler
    /// returns and NACKed when it throws, unless the handler settled it itself.
    /// </summary>
    public async ValueTask<StompSubscription> SubscribeAsync(
        string destination, Func<StompMessage, CancellationToken, ValueTask> handler, StompSubscribeOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(handler);
        var subscription = await SubscribeAsync(destination, options, cancellationToken);
        subscription.HandlerTask = Task.Run(() => RunHandlerAsync(subscription, handler), CancellationToken.None);
        return subscription;
    }

    /// <summary>BEGIN a transaction.</summary>
    public async ValueTask<StompTransaction> BeginTransactionAsync(CancellationToken cancellationToken = default)
    {
        var id = "tx-" + Next();
        await SendControlAsync(StompCommand.Begin, [new("transaction", id)], cancellationToken);
        return new StompTransaction(this, id);
    }

    /// <summary>
    /// Request/reply: SEND with <c>reply-to</c> a temporary queue of this connection and a fresh <c>correlation-id</c>,
    /// and wait for the reply that carries the same <c>correlation-id</c> (see <see cref="ReplyAsync"/>).
    /// </summary>
    /// <exception cref="TimeoutException">No reply within <paramref name="timeout"/>.</exception>
    public async Task<StompMessage> RequestAsync(string destination, ReadOnlyMemory<byte> body, TimeSpan timeout, StompSendOptions? options = null, CancellationToken cancellationToken = default)
    {
        var correlationId = Guid.NewGuid().ToString("N");
        var reply = new TaskCompletionSource<StompMessage>(TaskCreationOptions.RunContinuationsAsynchronously);
        _requests[correlationId] = reply;
        try
        {
            var headers = new Dictionary<string, string>(options?.Headers ?? new Dictionary<string, string>(), StringComparer.Ordinal)
            {
                ["reply-to"] = _replyQueue,
                ["correlation-id"] = correlationId,
            };
            await SendCoreAsync(destination, body, (options ?? new()) with { Headers = headers }, transaction: null, cancellationToken);
            return await reply.Task.WaitAsync(timeout, cancellationToken);
        }
        catch (TimeoutException)
        {
            throw new TimeoutException($"no reply from {destination} within {timeout.TotalSeconds:0.#} s");
        }
        finally
        {
            _requests.TryRemove(correlationId, out _);
        }
    }

    /// <summary>Answers a request made with <see cref="RequestAsync"/> (or any SEND with <c>reply-to</c>): SEND to its reply-to with its correlation-id.</summary>
    public ValueTask ReplyAsync(StompMessage request, ReadOnlyMemory<byte> body, StompSendOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        var replyTo = request.ReplyTo ?? throw new ArgumentException("The message has no reply-to header.", nameof(request));
        var headers = new Dictionary<string, string>(options?.Headers ?? new Dictionary<string, string>(), StringComparer.Ordinal);
        if (request.CorrelationId is { } correlationId)
        {
            headers["correlation-id"] = correlationId;
        }

        return SendCoreAsync(replyTo, body, (options ?? new()) with { Headers = headers }, transaction: null, cancellationToken);
    }

    /// <summary>DISCONNECT (after every earlier frame is processed), close, and end every subscription.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_disposing.IsCancellationRequested)
        {
            return;
        }

        await _disposing.CancelAsync();
        var connection = _connection;
        _connection = null;
        if (connection is not null)
        {
            await connection.DisconnectAsync(CancellationToken.None);
        }

        SetState(StompConnectionState.Closed, null);
        _connected.TrySetException(new ObjectDisposedException(nameof(StompClient)));
        foreach (var subscription in _subscriptions.Values)
        {
            subscription.Complete();
        }

        foreach (var request in _requests.Values)
        {
            request.TrySetCanceled();
        }

        foreach (var subscription in _subscriptions.Values)
        {
            if (subscription.HandlerTask is { } handler)
            {
                await handler.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            }
        }

        _subscriptions.Clear();
        _disposing.Dispose();
    }

    internal static StompSendOptions WithTextContentType(StompSendOptions? options) =>
        (options ?? new()) with { ContentType = options?.ContentType ?? "text/plain;charset=utf-8" };

    internal async ValueTask SendCoreAsync(string destination, ReadOnlyMemory<byte> body, StompSendOptions? options, string? transaction, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(destination);
        List<KeyValuePair<string, string>> headers = [new("destination", destination)];
        if (options?.ContentType is { } contentType)
        {
            headers.Add(new("content-type", contentType));
        }

        if (transaction is not null)
        {
            headers.Add(new("transaction", transaction));
        }

        if (options?.Headers is { } extra)
        {
            headers.AddRange(extra);
        }

        var connection = await GetConnectionAsync(cancellationToken);
        await connection.SendAsync(StompCommand.Send, headers, body, options?.WaitForReceipt ?? false, cancellationToken);
    }

    internal async ValueTask SendControlAsync(StompCommand command, List<KeyValuePair<string, string>> headers, CancellationToken cancellationToken)
    {
        var connection = await GetConnectionAsync(cancellationToken);
        await connection.SendAsync(command, headers, default, waitForReceipt: true, cancellationToken);
    }

    /// <returns>Whether an ACK or NACK was sent.</returns>
    internal async ValueTask<bool> SettleAsync(StompMessage message, bool ack, bool requeue, string? transaction, CancellationToken cancellationToken)
    {
        var connection = await GetConnectionAsync(cancellationToken);
        if (connection.Epoch != message.ConnectionEpoch)
        {
            // The message came on a connection since lost: the broker has already taken it back to redeliver it.
            LogStaleSettlement(_logger, message.MessageId);
            return false;
        }

        if (!message.TryMarkSettled())
        {
            return false; // settled already (by a handler, say): a second ACK would be an unknown ack id to the broker
        }

        List<KeyValuePair<string, string>> headers = connection.Version == StompVersion.V1_2
            ? [new("id", message.AckId)]
            : [new("message-id", message.MessageId), new("subscription", message.SubscriptionId)];
        if (!ack && !requeue)
        {
            headers.Add(new("requeue", "false"));
        }

        if (transaction is not null)
        {
            headers.Add(new("transaction", transaction));
        }

        // Only while the subscription is live, checked in line with the UNSUBSCRIBE (which the broker answers by taking
        // back every unsettled message, so an ACK after it would be an unknown ack id and cost the connection).
        var subscriptionId = message.SubscriptionId;
        bool sent;
        try
        {
            sent = await connection.SendAsync(
                ack ? StompCommand.Ack : StompCommand.Nack, headers, default, waitForReceipt: false, () => _subscriptions.ContainsKey(subscriptionId), cancellationToken);
        }
        catch
        {
            message.ClearSettled();
            throw;
        }

        if (!sent)
        {
            LogStaleSettlement(_logger, message.MessageId);
        }

        return sent;
    }

    internal async ValueTask UnsubscribeAsync(StompSubscription subscription)
    {
        if (!_subscriptions.TryRemove(subscription.Id, out _) || _connection is not { IsOpen: true } connection)
        {
            return;
        }

        try
        {
            await connection.SendAsync(StompCommand.Unsubscribe, [new("id", subscription.Id)], default, waitForReceipt: true, CancellationToken.None);
        }
        catch (Exception ex) when (ex is StompConnectionException or StompErrorException or TimeoutException)
        {
            // Lost meanwhile: the broker dropped the subscription with the connection.
        }
    }

    private async Task OpenAsync(CancellationToken cancellationToken)
    {
        var credentials = Options.CredentialProvider is { } provider
            ? await provider(cancellationToken)
            : new StompCredentials(Options.Login, Options.Token ?? Options.Passcode);
        var epoch = Interlocked.Increment(ref _epoch);
        var connection = await StompConnection.OpenAsync(Options, credentials, epoch, (frame, ct) => OnMessageAsync(epoch, frame, ct), cancellationToken);
        try
        {
            foreach (var subscription in _subscriptions.Values)
            {
                await connection.SendAsync(StompCommand.Subscribe, SubscribeHeaders(subscription), default, waitForReceipt: true, cancellationToken);
            }
        }
        catch
        {
            await connection.DisposeAsync();
            throw;
        }

        if (_disposing.IsCancellationRequested)
        {
            await connection.DisconnectAsync(CancellationToken.None);
            throw new ObjectDisposedException(nameof(StompClient));
        }

        _connection = connection;
        LogConnected(_logger, Options.Uri, connection.SessionId ?? "", _subscriptions.Count);
        SetState(StompConnectionState.Connected, null);
        _connected.TrySetResult();
        _ = WatchAsync(connection);
    }

    // When a connection ends, reconnect with exponential backoff and jitter, unless disposing or told not to.
    private async Task WatchAsync(StompConnection connection)
    {
        var reason = await connection.Completion;
        if (_disposing.IsCancellationRequested || !ReferenceEquals(_connection, connection))
        {
            return;
        }

        _connection = null;
        lock (_stateGate)
        {
            // First, so operations from now on wait for the next connection instead of spinning on this dead one.
            if (_connected.Task.IsCompleted)
            {
                _connected = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            }
        }

        await connection.DisposeAsync();
        LogConnectionLost(_logger, Options.Uri, reason?.Message ?? "closed by the broker");

        if (!Options.Reconnect.Enabled)
        {
            Close(reason);
            return;
        }

        SetState(StompConnectionState.Reconnecting, reason);
        var delay = Options.Reconnect.MinDelay;
        for (var attempt = 1; !_disposing.IsCancellationRequested; attempt++)
        {
            try
            {
                // Jitter: 50-100 % of the nominal delay, so clients cut off together do not come back together.
                var wait = delay * (0.5 + (Random.Shared.NextDouble() * 0.5));
                LogReconnecting(_logger, Options.Uri, (long)wait.TotalMilliseconds, attempt);
                await Task.Delay(wait, _disposing.Token);
                await OpenAsync(_disposing.Token);
                return;
            }
            catch (OperationCanceledException) when (_disposing.IsCancellationRequested)
            {
                return;
            }
            catch (ObjectDisposedException)
            {
                return;
            }
            catch (Exception ex)
            {
                // Any failed try counts, whatever failed: the broker, the network, or a credential provider that threw.
                LogReconnectFailed(_logger, Options.Uri, attempt, ex.Message);
                if (Options.Reconnect.MaxAttempts > 0 && attempt >= Options.Reconnect.MaxAttempts)
                {
                    Close(ex);
                    return;
                }
            }

            delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, Options.Reconnect.MaxDelay.Ticks));
        }
    }

    private void Close(Exception? reason)
    {
        SetState(StompConnectionState.Closed, reason);
        var error = new StompConnectionException("the connection was lost and the client is closed", reason ?? new OperationCanceledException());
        _connected.TrySetException(error);
        foreach (var subscription in _subscriptions.Values)
        {
            subscription.Complete(error);
        }
    }

    private async ValueTask<StompConnection> GetConnectionAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            ObjectDisposedException.ThrowIf(_disposing.IsCancellationRequested, this);
            if (_connection is { IsOpen: true } connection)
            {
                return connection;
            }

            Task connected;
            lock (_stateGate)
            {
                if (_state is StompConnectionState.Disconnected)
                {
                    throw new InvalidOperationException("Call ConnectAsync first.");
                }

                connected = _connected.Task;
            }

            await connected.WaitAsync(cancellationToken);
        }
    }

    private async ValueTask OnMessageAsync(long epoch, IncomingFrame frame, CancellationToken cancellationToken)
    {
        var message = new StompMessage(this, epoch, frame.Headers, frame.Body);
        var subscriptionId = message.SubscriptionId;
        if (subscriptionId.StartsWith("/temp-queue/", StringComparison.Ordinal))
        {
            if (message.CorrelationId is { } correlationId && _requests.TryRemove(correlationId, out var waiting))
            {
                waiting.TrySetResult(message);
            }

            return;
        }

        if (_subscriptions.TryGetValue(subscriptionId, out var subscription))
        {
            try
            {
                await subscription.WriteAsync(message, cancellationToken);
            }
            catch (System.Threading.Channels.ChannelClosedException)
            {
                // Unsubscribed meanwhile.
            }
        }
    }

    private async Task RunHandlerAsync(StompSubscription subscription, Func<StompMessage, CancellationToken, ValueTask> handler)
    {
        var token = _disposing.Token;
        try
        {
            await foreach (var message in subscription.ReadAllAsync(token))
            {
                if (subscription.IsDisposed)
                {
                    break; // what is still buffered goes back to the broker with the UNSUBSCRIBE
                }

                try
                {
                    await handler(message, token);
                    if (subscription.Options.AckMode != StompAckMode.Auto && !message.IsSettled)
                    {
                        await message.AckAsync(token);
                    }
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    LogHandlerFailed(_logger, subscription.Destination, ex);
                    if (subscription.Options.AckMode != StompAckMode.Auto && !message.IsSettled)
                    {
                        await message.NackAsync(requeue: true, token);
                    }
                }
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException or StompConnectionException)
        {
        }
    }

    private static List<KeyValuePair<string, string>> SubscribeHeaders(StompSubscription subscription)
    {
        var options = subscription.Options;
        List<KeyValuePair<string, string>> headers =
        [
            new("id", subscription.Id),
            new("destination", subscription.Destination),
            new("ack", options.AckMode switch
            {
                StompAckMode.Client => "client",
                StompAckMode.ClientIndividual => "client-individual",
                _ => "auto",
            }),
        ];
        if (options.PrefetchCount is { } prefetch)
        {
            headers.Add(new("prefetch-count", prefetch.ToString(CultureInfo.InvariantCulture)));
        }

        if (options.Headers is { } extra)
        {
            headers.AddRange(extra);
        }

        return headers;
    }

    private long Next() => Interlocked.Increment(ref _sequence);

    private void SetState(StompConnectionState state, Exception? error)
    {
        StompConnectionState previous;
        lock (_stateGate)
        {
            previous = _state;
            if (previous == state || previous == StompConnectionState.Closed)
            {
                return;
            }

            _state = state;
        }

        StateChanged?.Invoke(this, new StompConnectionStateChangedEventArgs(previous, state, error));
    }

    [LoggerMessage(1, LogLevel.Information, "Connected to {Uri} (session {SessionId}); {Subscriptions} subscriptions active")]
    private static partial void LogConnected(ILogger logger, Uri uri, string sessionId, int subscriptions);

    [LoggerMessage(2, LogLevel.Warning, "Connection to {Uri} lost: {Reason}; reconnecting")]
    private static partial void LogConnectionLost(ILogger logger, Uri uri, string reason);

    [LoggerMessage(3, LogLevel.Warning, "Reconnect to {Uri} failed (attempt {Attempt}): {Error}")]
    private static partial void LogReconnectFailed(ILogger logger, Uri uri, int attempt, string error);

    [LoggerMessage(4, LogLevel.Error, "Message handler for {Destination} failed; the message is NACKed")]
    private static partial void LogHandlerFailed(ILogger logger, string destination, Exception exception);

    [LoggerMessage(6, LogLevel.Information, "Reconnecting to {Uri} in {DelayMs} ms (attempt {Attempt})")]
    private static partial void LogReconnecting(ILogger logger, Uri uri, long delayMs, int attempt);

    [LoggerMessage(5, LogLevel.Debug, "Not settling message {MessageId}: it came on a connection since lost and will be redelivered")]
    private static partial void LogStaleSettlement(ILogger logger, string messageId);
}
