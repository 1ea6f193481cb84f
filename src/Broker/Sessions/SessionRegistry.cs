using System.Collections.Concurrent;
using Broker.Transports;

namespace Broker.Sessions;

/// <summary>Every live connection, so the broker can tell them all when it shuts down and count them.</summary>
internal sealed class SessionRegistry
{
    private readonly ConcurrentDictionary<StompSession, byte> _sessions = new();
    private readonly TaskCompletionSource _allClosed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly ConcurrentDictionary<System.Net.IPAddress, int> _perAddress = new();
    private int _connections;
    private volatile bool _shuttingDown;

    /// <summary>
    /// Counts a new connection against the limits (total, per remote address); false with the reason when it is over.
    /// Every successful call is matched by <see cref="ReleaseConnection"/>.
    /// </summary>
    public bool TryAcquireConnection(System.Net.IPAddress? address, Configuration.FrameLimitOptions limits, out string reason)
    {
        reason = "";
        if (limits.MaxConnections > 0 && Interlocked.Increment(ref _connections) > limits.MaxConnections)
        {
            Interlocked.Decrement(ref _connections);
            reason = $"too many connections: the broker accepts at most {limits.MaxConnections}";
            return false;
        }

        if (limits.MaxConnections <= 0)
        {
            Interlocked.Increment(ref _connections);
        }

        if (address is not null && limits.MaxConnectionsPerAddress > 0
            && _perAddress.AddOrUpdate(address, 1, static (_, n) => n + 1) > limits.MaxConnectionsPerAddress)
        {
            ReleaseConnection(address);
            reason = $"too many connections from {address}: at most {limits.MaxConnectionsPerAddress} per address";
            return false;
        }

        return true;
    }

    /// <summary>Gives back what <see cref="TryAcquireConnection"/> took.</summary>
    public void ReleaseConnection(System.Net.IPAddress? address)
    {
        Interlocked.Decrement(ref _connections);
        if (address is not null && _perAddress.AddOrUpdate(address, 0, static (_, n) => n - 1) <= 0)
        {
            _perAddress.TryRemove(new KeyValuePair<System.Net.IPAddress, int>(address, 0));
        }
    }

    /// <summary>Connections counted against the limits.</summary>
    public int ConnectionCount => Volatile.Read(ref _connections);

    public int Count => _sessions.Count;

    public bool IsShuttingDown => _shuttingDown;

    public void Add(StompSession session)
    {
        _sessions.TryAdd(session, 0);
        if (_shuttingDown)
        {
            session.RequestClose(CloseReason.Shutdown, "server shutting down", "The broker is shutting down; reconnect to another node or later.");
        }
    }

    public void Remove(StompSession session)
    {
        _sessions.TryRemove(session, out _);
        if (_shuttingDown && _sessions.IsEmpty)
        {
            _allClosed.TrySetResult();
        }
    }

    /// <summary>Tells every connection the server is going (ERROR, then close 1001) and waits up to the grace period.</summary>
    public async Task ShutdownAsync(TimeSpan gracePeriod)
    {
        _shuttingDown = true;
        foreach (var session in _sessions.Keys)
        {
            session.RequestClose(CloseReason.Shutdown, "server shutting down", "The broker is shutting down; reconnect to another node or later.");
        }

        if (_sessions.IsEmpty)
        {
            return;
        }

        await _allClosed.Task.WaitAsync(gracePeriod).ContinueWith(static _ => { }, TaskScheduler.Default);
    }
}
