using System.Net;
using System.Net.Sockets;
using System.Threading.Channels;
using Microsoft.AspNetCore.Connections;

namespace Broker.Transports.IoUring;

/// <summary>
/// Kestrel's transport on io_uring (Linux 5.19 or later), chosen with <c>Broker:Transport=IoUring</c>. Its reason to
/// exist: accepted sockets are io_uring direct descriptors, which do not count against the process's open-files limit,
/// so one broker holds more connections than that limit (each ring's table holds up to the limit; the transport runs
/// as many rings as <see cref="IoUringTransportOptions.MaxConnections"/> needs, and at least one per core).
/// Every listener's accepts are pending on every ring, so connections spread over the rings as they come.
/// </summary>
internal sealed class IoUringTransport : IConnectionListenerFactory, IConnectionListenerFactorySelector, IAsyncDisposable
{
    public const int MaxListeners = 32;
    private const int MaxRings = 256;

    private readonly IoUringTransportOptions _options;
    private readonly ILogger _logger;
    private readonly IoUringConnectionListener?[] _listeners = new IoUringConnectionListener?[MaxListeners];
    private readonly Lock _gate = new();
    private IoUringRing[]? _rings;
    private long _lastFullLog = -60_000;

    public IoUringTransport(IoUringTransportOptions options, ILoggerFactory loggers)
    {
        _options = options;
        _logger = loggers.CreateLogger("Broker.IoUring");
        PipeOptions = new IoUringPipeOptions(options.MaxReadBufferSize);
    }

    public IoUringPipeOptions PipeOptions { get; }

    public IoUringConnectionListener? Listener(int index) => Volatile.Read(ref _listeners[index]);

    // Other endpoints (a Unix socket, a named pipe) go to Kestrel's socket transport.
    public bool CanBind(EndPoint endpoint) => endpoint is IPEndPoint;

    public ValueTask<IConnectionListener> BindAsync(EndPoint endpoint, CancellationToken cancellationToken = default)
    {
        if (endpoint is not IPEndPoint ipEndPoint)
        {
            throw new NotSupportedException($"The io_uring transport listens on IP addresses only, not {endpoint}.");
        }

        IoUringRing[] rings;
        IoUringConnectionListener listener;
        lock (_gate)
        {
            rings = _rings ??= StartRings();
            var index = Array.IndexOf(_listeners, null);
            if (index < 0)
            {
                throw new InvalidOperationException($"The io_uring transport has at most {MaxListeners} listeners.");
            }

            listener = new IoUringConnectionListener(this, index, Listen(ipEndPoint));
            Volatile.Write(ref _listeners[index], listener);
        }

        foreach (var ring in rings)
        {
            ring.Post(new Request(RequestKind.Accept, null, 0, listener.Index));
        }

        return ValueTask.FromResult<IConnectionListener>(listener);
    }

    private IoUringRing[] StartRings()
    {
        // A ring's table of direct descriptors may hold as many sockets as the open-files limit allows one process
        // (and the kernel at most 2^20). Enough rings for MaxConnections (and a margin for connections refused over
        // it, which still need a slot for their ERROR), each table no larger than its share.
        var limit = Math.Min(IoUringNative.OpenFilesLimit(), IoUringNative.MaxFixedFiles);
        var perRing = _options.SlotsPerRing > 0 ? Math.Min(_options.SlotsPerRing, limit) : limit;
        var wanted = _options.MaxConnections <= 0 ? 0L : (long)Math.Ceiling(_options.MaxConnections * 1.05);
        var atLeast = _options.Rings > 0 ? _options.Rings : Environment.ProcessorCount;
        var count = (int)Math.Max(atLeast, (wanted + perRing - 1) / perRing);
        if (count > MaxRings)
        {
            throw new InvalidOperationException(
                $"The io_uring transport would need {count} rings of {perRing} connections for Broker:Limits:MaxConnections={_options.MaxConnections}; "
                + $"at most {MaxRings}: raise Broker:IoUring:SlotsPerRing or the open-files limit, or lower MaxConnections.");
        }

        var slots = wanted == 0 || _options.SlotsPerRing > 0 ? perRing : (int)Math.Min(perRing, ((wanted + count - 1) / count) + 64);
        var rings = new List<IoUringRing>(count);
        try
        {
            for (var i = 0; i < count; i++)
            {
                rings.Add(new IoUringRing(this, i, slots, _options.ReceiveBuffers, _options.ReceiveBufferBytes));
            }
        }
        catch
        {
            foreach (var ring in rings)
            {
                ring.Post(new Request(RequestKind.Stop, null));
            }

            throw;
        }

        Diagnostics.BrokerLog.IoUringStarted(_logger, count, slots);
        return [.. rings];
    }

    private static Socket Listen(IPEndPoint endpoint)
    {
        var socket = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            if (endpoint.AddressFamily == AddressFamily.InterNetworkV6 && endpoint.Address.Equals(IPAddress.IPv6Any))
            {
                socket.DualMode = true;
            }

            socket.NoDelay = true; // accepted sockets take it from the listening socket
            socket.Bind(endpoint);
            socket.Listen(4096);
            return socket;
        }
        catch (SocketException ex) when (ex.SocketErrorCode == SocketError.AddressAlreadyInUse)
        {
            socket.Dispose();
            throw new AddressInUseException(ex.Message, ex);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Stops accepting for <paramref name="listener"/> on every ring; <see cref="IoUringConnectionListener.Released"/>
    /// completes once no ring has an accept pending on its socket, so that it may be closed.
    /// </summary>
    public void Unbind(IoUringConnectionListener listener)
    {
        IoUringRing[] rings;
        lock (_gate)
        {
            if (Volatile.Read(ref _listeners[listener.Index]) != listener)
            {
                return;
            }

            Volatile.Write(ref _listeners[listener.Index], null);
            rings = _rings!;
        }

        listener.ExpectReleases(rings.Length);
        foreach (var ring in rings)
        {
            ring.Post(new Request(RequestKind.StopAccepting, null, Listener: listener));
        }
    }

    /// <summary>On a ring's thread: accepting on a listener's socket fails for good.</summary>
    public void NoteAcceptFailed(IoUringConnectionListener listener, int errno) =>
        Diagnostics.BrokerLog.IoUringAcceptFailed(_logger, listener.EndPoint.ToString() ?? "?", IoUringNative.Error("accept", errno).Message);

    /// <summary>On a ring's thread: its table is full. Logged (once a minute at most), for an operator to see.</summary>
    public void NoteTableFull()
    {
        var now = Environment.TickCount64;
        var last = Interlocked.Read(ref _lastFullLog);
        if (now - last >= 60_000 && Interlocked.CompareExchange(ref _lastFullLog, now, last) == last)
        {
            Diagnostics.BrokerLog.IoUringFull(_logger, _rings!.Length);
        }
    }

    public async ValueTask DisposeAsync()
    {
        IoUringRing[]? rings;
        lock (_gate)
        {
            rings = _rings;
        }

        if (rings is null)
        {
            return;
        }

        foreach (var ring in rings)
        {
            ring.Post(new Request(RequestKind.Stop, null));
        }

        foreach (var ring in rings)
        {
            await ring.Stopped;
        }
    }
}

/// <summary>Settings of the io_uring transport.</summary>
internal sealed record IoUringTransportOptions
{
    /// <summary>Connections the transport must be able to hold: enough rings are started for them.</summary>
    public int MaxConnections { get; init; }

    /// <summary>Rings to run at least; 0 for one per core.</summary>
    public int Rings { get; init; }

    /// <summary>Connections one ring holds; 0 to share <see cref="MaxConnections"/> out over the rings.</summary>
    public int SlotsPerRing { get; init; }

    /// <summary>The most bytes a connection's input may hold before the ring stops receiving for it.</summary>
    public long MaxReadBufferSize { get; init; } = 1024 * 1024;

    /// <summary>Receive buffers per ring (a power of two), lent to a connection only while its bytes are copied out.</summary>
    public int ReceiveBuffers { get; init; } = 256;

    /// <summary>Bytes per receive buffer.</summary>
    public int ReceiveBufferBytes { get; init; } = 16 * 1024;
}

/// <summary>One bound address of the io_uring transport; the rings accept for it and hand the connections here.</summary>
internal sealed class IoUringConnectionListener : IConnectionListener
{
    private readonly IoUringTransport _transport;
    private readonly Socket _socket;
    private readonly Channel<IoUringConnection> _accepted = Channel.CreateUnbounded<IoUringConnection>(
        new UnboundedChannelOptions { SingleReader = false, SingleWriter = false });
    private readonly TaskCompletionSource _released = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _ringsHolding;

    public IoUringConnectionListener(IoUringTransport transport, int index, Socket socket)
    {
        _transport = transport;
        Index = index;
        _socket = socket;
        SocketFd = (int)socket.SafeHandle.DangerousGetHandle();
        EndPoint = socket.LocalEndPoint!;
    }

    public int Index { get; }

    public int SocketFd { get; }

    public EndPoint EndPoint { get; }

    /// <summary>Completes once no ring has an accept pending on the socket (after <see cref="UnbindAsync"/>).</summary>
    public Task Released => _released.Task;

    public void ExpectReleases(int rings)
    {
        if (Interlocked.Add(ref _ringsHolding, rings) == 0)
        {
            _released.TrySetResult();
        }
    }

    /// <summary>A ring (on its thread, or after it stopped) no longer uses the socket.</summary>
    public void RingReleased()
    {
        if (Interlocked.Decrement(ref _ringsHolding) == 0)
        {
            _released.TrySetResult();
        }
    }

    /// <summary>On a ring's thread: a connection was accepted; false once the listener has stopped.</summary>
    public bool TryAdd(IoUringConnection connection) => _accepted.Writer.TryWrite(connection);

    public async ValueTask<ConnectionContext?> AcceptAsync(CancellationToken cancellationToken = default)
    {
        try
        {
            return await _accepted.Reader.ReadAsync(cancellationToken);
        }
        catch (ChannelClosedException)
        {
            return null;
        }
    }

    public async ValueTask UnbindAsync(CancellationToken cancellationToken = default)
    {
        _transport.Unbind(this);
        if (_accepted.Writer.TryComplete())
        {
            // Accepted but never handed to Kestrel: nobody else will close them.
            while (_accepted.Reader.TryRead(out var connection))
            {
                connection.Abort();
                await connection.DisposeAsync();
            }
        }

        await Released.WaitAsync(cancellationToken);
    }

    public async ValueTask DisposeAsync()
    {
        await UnbindAsync();
        _socket.Dispose(); // no ring has an accept on it any more, so its number cannot reach another file
    }
}
