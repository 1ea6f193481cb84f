using System.Collections.Concurrent;
using Broker.Transports;

namespace Broker.Sessions;

/// <summary>Every live connection, so the broker can tell them all when it shuts down and count them.</summary>
internal sealed class SessionRegistry
{
    private readonly ConcurrentDictionary<StompSession, byte> _sessions = new();
    private readonly TaskCompletionSource _allClosed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private volatile bool _shuttingDown;

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
