using System.Buffers;
using System.Collections.Concurrent;
using System.Text;
using Broker.Stomp;

namespace Broker.Client.Internal;

/// <summary>A frame from the broker, copied out of the parser's buffers.</summary>
internal sealed record IncomingFrame(StompCommand Command, List<KeyValuePair<string, string>> Headers, byte[] Body)
{
    public string? this[string name] => Headers.FirstOrDefault(h => h.Key == name).Value;
}

/// <summary>
/// One physical connection: CONNECT/CONNECTED, frames written one at a time, a reader that dispatches MESSAGEs (awaiting
/// the subscriber's buffer, which is the back-pressure), RECEIPTs and ERRORs, and heart-beats both ways. When it ends,
/// every operation waiting on it fails and <see cref="Completion"/> completes with the reason.
/// </summary>
internal sealed class StompConnection : IAsyncDisposable
{
    private static readonly StompParserLimits IncomingLimits = new() { MaxFrameBytes = 64 * 1024 * 1024, MaxBodyBytes = 64 * 1024 * 1024 };

    private readonly ClientTransport _transport;
    private readonly StompClientOptions _options;
    private readonly Func<IncomingFrame, CancellationToken, ValueTask> _onMessage;
    private readonly SemaphoreSlim _writeLock = new(1, 1);
    private readonly ArrayBufferWriter<byte> _buffer = new(1024);
    private readonly StompParser _parser = new(IncomingLimits);
    private readonly ConcurrentDictionary<string, PendingReceipt> _receipts = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _closing = new();
    private readonly TaskCompletionSource<Exception?> _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long _receiptSequence;
    private long _lastReceived = Environment.TickCount64;
    private long _lastSent = Environment.TickCount64;
    private int _delivering;
    private NegotiatedHeartBeat _heartBeat;
    private StompErrorException? _error;
    private long _framesWritten; // under the write lock
    private long _confirmed; // reader only: every frame up to this one was processed (a RECEIPT or CONNECTED said so)

    private StompConnection(ClientTransport transport, StompClientOptions options, long epoch, Func<IncomingFrame, CancellationToken, ValueTask> onMessage)
    {
        _transport = transport;
        _options = options;
        Epoch = epoch;
        _onMessage = onMessage;
    }

    /// <summary>Numbers connections of one client, so acks for messages of a lost connection are recognised.</summary>
    public long Epoch { get; }

    public StompVersion Version { get; private set; } = StompVersion.V1_2;

    public string? SessionId { get; private set; }

    public string? Server { get; private set; }

    /// <summary>Completes when the connection has ended, with the reason (null for a clean close).</summary>
    public Task<Exception?> Completion => _completion.Task;

    public bool IsOpen => !_completion.Task.IsCompleted;

    public static async Task<StompConnection> OpenAsync(
        StompClientOptions options, StompCredentials credentials, long epoch, Func<IncomingFrame, CancellationToken, ValueTask> onMessage, CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(options.ConnectTimeout);
        ClientTransport? transport = null;
        try
        {
            transport = await ClientTransport.ConnectAsync(options, timeout.Token);
            var connection = new StompConnection(transport, options, epoch, onMessage);
            await connection.HandshakeAsync(credentials, timeout.Token);
            return connection;
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            await DisposeQuietlyAsync(transport);
            throw new StompConnectionException($"no CONNECTED from {options.Uri} within {options.ConnectTimeout.TotalSeconds:0.#} s");
        }
        catch (Exception ex) when (ex is IOException or System.Net.Sockets.SocketException or System.Net.WebSockets.WebSocketException or System.Security.Authentication.AuthenticationException)
        {
            await DisposeQuietlyAsync(transport);
            throw new StompConnectionException($"cannot connect to {options.Uri}: {ex.Message}", ex);
        }
        catch (StompProtocolException ex)
        {
            // Not STOMP (an HTTP server, a proxy's error page): the broker cannot be reached at this address.
            await DisposeQuietlyAsync(transport);
            throw new StompConnectionException($"{options.Uri} did not answer in STOMP: {ex.Message}", ex);
        }
        catch
        {
            await DisposeQuietlyAsync(transport);
            throw;
        }
    }

    private async Task HandshakeAsync(StompCredentials credentials, CancellationToken cancellationToken)
    {
        var ours = new HeartBeat((int)_options.HeartBeatOutgoing.TotalMilliseconds, (int)_options.HeartBeatIncoming.TotalMilliseconds);
        List<KeyValuePair<string, string>> headers =
        [
            new("accept-version", "1.0,1.1,1.2"),
            new("host", _options.VirtualHost),
            new("heart-beat", ours.ToString()),
        ];
        if (credentials.Login is not null)
        {
            headers.Add(new("login", credentials.Login));
        }

        if (credentials.Passcode is not null)
        {
            headers.Add(new("passcode", credentials.Passcode));
        }

        await WriteFrameAsync(StompCommand.Connect, headers, default, stillWanted: null, receipt: null, cancellationToken);
        var first = await ReadFrameAsync(cancellationToken)
            ?? throw new StompConnectionException($"{_options.Uri} closed the connection before CONNECTED");
        if (first.Command == StompCommand.Error)
        {
            throw ToException(first);
        }

        if (first.Command != StompCommand.Connected)
        {
            throw new StompConnectionException($"expected CONNECTED, got {first.Command}");
        }

        Version = StompVersions.TryParse(first["version"] ?? "1.0", out var version) ? version : StompVersion.V1_0;
        _parser.Version = Version;
        _confirmed = 1; // the CONNECT
        SessionId = first["session"];
        Server = first["server"];
        var theirs = HeartBeat.Parse(Encoding.UTF8.GetBytes(first["heart-beat"] ?? ""));
        _heartBeat = ours.Negotiate(theirs);
        _ = RunReaderAsync();
        if (_heartBeat.OutgoingMs > 0 || _heartBeat.IncomingMs > 0)
        {
            _ = RunHeartBeatsAsync();
        }
    }

    /// <summary>Writes a frame; with <paramref name="waitForReceipt"/>, completes on the broker's RECEIPT or throws its ERROR.</summary>
    public async ValueTask SendAsync(StompCommand command, List<KeyValuePair<string, string>> headers, ReadOnlyMemory<byte> body, bool waitForReceipt, CancellationToken cancellationToken) =>
        await SendAsync(command, headers, body, waitForReceipt, stillWanted: null, cancellationToken);

    /// <summary>
    /// Writes a frame unless <paramref name="stillWanted"/>, asked while holding the write lock (so in order with every
    /// other frame), says no; returns whether it was written.
    /// </summary>
    public async ValueTask<bool> SendAsync(
        StompCommand command, List<KeyValuePair<string, string>> headers, ReadOnlyMemory<byte> body, bool waitForReceipt, Func<bool>? stillWanted, CancellationToken cancellationToken)
    {
        PendingReceipt? receipt = null;
        string? receiptId = null;
        if (waitForReceipt)
        {
            receiptId = "r-" + Interlocked.Increment(ref _receiptSequence).ToString(System.Globalization.CultureInfo.InvariantCulture);
            receipt = new PendingReceipt();
            _receipts[receiptId] = receipt;
            headers.Add(new("receipt", receiptId));
        }

        try
        {
            if (!await WriteFrameAsync(command, headers, body, stillWanted, receipt, cancellationToken))
            {
                return false;
            }

            if (receipt is not null)
            {
                await receipt.Completion.Task.WaitAsync(_options.ReceiptTimeout, cancellationToken);
            }

            return true;
        }
        catch (TimeoutException)
        {
            throw new TimeoutException($"no RECEIPT for {command} within {_options.ReceiptTimeout.TotalSeconds:0.#} s");
        }
        catch (Exception ex) when (ex is IOException or System.Net.WebSockets.WebSocketException or ObjectDisposedException)
        {
            throw new StompConnectionException($"the connection was lost while sending {command}", ex);
        }
        finally
        {
            if (receiptId is not null)
            {
                _receipts.TryRemove(receiptId, out _);
            }
        }
    }

    private async ValueTask<bool> WriteFrameAsync(
        StompCommand command, List<KeyValuePair<string, string>> headers, ReadOnlyMemory<byte> body, Func<bool>? stillWanted, PendingReceipt? receipt, CancellationToken cancellationToken)
    {
        if (!IsOpen)
        {
            throw _error is null ? new StompConnectionException("the connection is closed") : new StompConnectionException("the connection is closed", _error);
        }

        await _writeLock.WaitAsync(cancellationToken);
        try
        {
            if (stillWanted is not null && !stillWanted())
            {
                return false;
            }

            _buffer.ResetWrittenCount();
            StompWriter.WriteCommand(_buffer, command);
            foreach (var (name, value) in headers)
            {
                StompWriter.WriteHeader(_buffer, command, Version, name, value);
            }

            StompWriter.WriteBody(_buffer, command, body.Span);
            var sequence = ++_framesWritten;
            if (receipt is not null)
            {
                Volatile.Write(ref receipt.Sequence, sequence);
            }

            await _transport.SendAsync(_buffer.WrittenMemory, cancellationToken);
            Volatile.Write(ref _lastSent, Environment.TickCount64);
            return true;
        }
        finally
        {
            _writeLock.Release();
        }
    }

    private async Task<IncomingFrame?> ReadFrameAsync(CancellationToken cancellationToken)
    {
        var input = _transport.Input;
        while (true)
        {
            var result = await input.ReadAsync(cancellationToken);
            var buffer = result.Buffer;
            if (!buffer.IsEmpty)
            {
                Volatile.Write(ref _lastReceived, Environment.TickCount64);
            }

            var parsed = false;
            try
            {
                while (_parser.TryParse(ref buffer, out var frame))
                {
                    if (!frame.IsHeartBeat)
                    {
                        parsed = true;
                        return new IncomingFrame(frame.Command, frame.Headers.ToList(), frame.Body.ToArray());
                    }
                }

                if (result.IsCompleted)
                {
                    return null;
                }
            }
            finally
            {
                // After a frame, more may already be buffered: mark nothing beyond it examined, or the next read would
                // wait for new bytes (a heart-beat, seconds later) before handing out the frames already here.
                if (parsed)
                {
                    input.AdvanceTo(buffer.Start);
                }
                else
                {
                    input.AdvanceTo(buffer.Start, buffer.End);
                }
            }
        }
    }

    private async Task RunReaderAsync()
    {
        Exception? reason = null;
        try
        {
            while (await ReadFrameAsync(_closing.Token) is { } frame)
            {
                switch (frame.Command)
                {
                    case StompCommand.Message:
                        // Waiting here for room in a subscriber's buffer is back-pressure, not a silent broker: the
                        // heart-beat check leaves it alone, and the broker's silence is counted again from now on.
                        Volatile.Write(ref _delivering, 1);
                        await _onMessage(frame, _closing.Token);
                        Volatile.Write(ref _lastReceived, Environment.TickCount64);
                        Volatile.Write(ref _delivering, 0);
                        break;
                    case StompCommand.Receipt when frame["receipt-id"] is { } id && _receipts.TryRemove(id, out var waiting):
                        _confirmed = Math.Max(_confirmed, Volatile.Read(ref waiting.Sequence));
                        waiting.Completion.TrySetResult();
                        break;
                    case StompCommand.Error:
                        // The broker closes after an ERROR (RabbitMQ may not); the operation it names fails with it, the
                        // others with the loss.
                        _error = ToException(frame);
                        PendingReceipt? failing = null;
                        if (frame["receipt-id"] is { } failed ? _receipts.TryRemove(failed, out failing) : TryTakeBlamed(out failing))
                        {
                            failing!.Completion.TrySetException(_error);
                        }

                        reason = _error;
                        break;
                }
            }
        }
        catch (OperationCanceledException) when (_closing.IsCancellationRequested)
        {
        }
        catch (Exception ex) when (ex is IOException or StompProtocolException or System.Net.WebSockets.WebSocketException or ObjectDisposedException or InvalidOperationException or OperationCanceledException)
        {
            reason ??= ex;
        }
        finally
        {
            await _transport.Input.CompleteAsync();
            var lost = reason is null ? new StompConnectionException("the connection was closed") : new StompConnectionException($"the connection was lost: {reason.Message}", reason);
            foreach (var id in _receipts.Keys)
            {
                if (_receipts.TryRemove(id, out var pending))
                {
                    pending.Completion.TrySetException(_error ?? (Exception)lost);
                }
            }

            _completion.TrySetResult(_closing.IsCancellationRequested ? null : reason ?? lost);
        }
    }

    private async Task RunHeartBeatsAsync()
    {
        var outgoing = _heartBeat.OutgoingMs;
        var incomingLimit = _heartBeat.IncomingMs * 2L;
        var period = Math.Max(50, new[] { outgoing, (int)Math.Min(incomingLimit, int.MaxValue) }.Where(ms => ms > 0).Min() / 4);
        using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(period));
        try
        {
            while (await timer.WaitForNextTickAsync(_closing.Token) && IsOpen)
            {
                var now = Environment.TickCount64;
                if (incomingLimit > 0 && Volatile.Read(ref _delivering) == 0 && now - Volatile.Read(ref _lastReceived) > incomingLimit)
                {
                    // The broker went silent: treat the connection as lost (the client reconnects).
                    await _transport.DisposeAsync();
                    return;
                }

                if (outgoing > 0 && now - Volatile.Read(ref _lastSent) >= outgoing - period && await _writeLock.WaitAsync(0))
                {
                    try
                    {
                        await _transport.SendAsync("\n"u8.ToArray(), _closing.Token);
                        Volatile.Write(ref _lastSent, now);
                    }
                    finally
                    {
                        _writeLock.Release();
                    }
                }
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or IOException or System.Net.WebSockets.WebSocketException or ObjectDisposedException)
        {
        }
    }

    /// <summary>DISCONNECT with a receipt (all earlier frames processed), then close.</summary>
    public async ValueTask DisconnectAsync(CancellationToken cancellationToken)
    {
        if (IsOpen)
        {
            try
            {
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                timeout.CancelAfter(TimeSpan.FromSeconds(5));
                await SendAsync(StompCommand.Disconnect, [], default, waitForReceipt: true, timeout.Token);
            }
            catch (Exception ex) when (ex is StompConnectionException or StompErrorException or TimeoutException or OperationCanceledException)
            {
            }
        }

        await DisposeAsync();
    }

    public async ValueTask DisposeAsync()
    {
        if (_closing.IsCancellationRequested)
        {
            return;
        }

        await _closing.CancelAsync();
        await _transport.DisposeAsync();
        _completion.TrySetResult(null);
        _parser.Dispose();
    }

    // An ERROR without a receipt-id (RabbitMQ sends those for a bad SEND, and stays connected) is about a frame after the
    // last one confirmed. The broker handles frames in order, so if the oldest receipted frame still waiting is the very
    // next one, the ERROR is about it (had it succeeded, its RECEIPT would have come first). Otherwise nobody is blamed.
    private bool TryTakeBlamed(out PendingReceipt? blamed)
    {
        blamed = null;
        foreach (var (id, pending) in _receipts)
        {
            if (Volatile.Read(ref pending.Sequence) == _confirmed + 1)
            {
                return _receipts.TryRemove(id, out blamed);
            }
        }

        return false;
    }

    internal static StompErrorException ToException(IncomingFrame frame) =>
        new(frame["message"] ?? "the broker sent ERROR", frame.Body.Length > 0 ? Encoding.UTF8.GetString(frame.Body) : null, frame.Headers);

    private static async ValueTask DisposeQuietlyAsync(ClientTransport? transport)
    {
        if (transport is not null)
        {
            await transport.DisposeAsync();
        }
    }

    /// <summary>An operation waiting for its RECEIPT.</summary>
    private sealed class PendingReceipt
    {
        /// <summary>The frame's place among the frames written on this connection (CONNECT is 1); 0 until written.</summary>
        public long Sequence;

        public TaskCompletionSource Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}
