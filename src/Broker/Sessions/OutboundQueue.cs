using System.Threading.Tasks.Sources;

namespace Broker.Sessions;

/// <summary>
/// A connection's outbound frames, bounded in bytes. Many producers (publishers on other connections, the session's
/// own reader, the heart-beat timer), one consumer (the connection's writer). Producers never block: when the bound is
/// reached the caller applies the slow-consumer policy.
/// </summary>
internal sealed class OutboundQueue : IValueTaskSource<bool>
{
    private readonly Lock _gate = new();
    private OutboundItem[] _items = new OutboundItem[2]; // grows by doubling; small, as most connections are idle
    private int _head;
    private int _count;
    private long _bytes;
    private bool _completed;
    private bool _waiting;
    private ManualResetValueTaskSourceCore<bool> _signal = new() { RunContinuationsAsynchronously = true };

    public OutboundQueue(long maxBytes) => MaxBytes = maxBytes;

    public long MaxBytes { get; }

    public Lock SyncRoot => _gate;

    public long BufferedBytes => Volatile.Read(ref _bytes);

    /// <summary>Items queued. Caller holds <see cref="SyncRoot"/>.</summary>
    public int Count => _count;

    /// <summary>Whether <paramref name="size"/> more bytes fit. Caller holds <see cref="SyncRoot"/>.</summary>
    public bool HasRoomFor(int size) => _bytes + size <= MaxBytes || _count == 0;

    /// <summary>Adds an item whatever the bound (control frames, and deliveries already checked). Caller holds <see cref="SyncRoot"/>.</summary>
    /// <returns>False when the queue is completed and the item was not added.</returns>
    public bool Enqueue(in OutboundItem item)
    {
        if (_completed)
        {
            return false;
        }

        if (_count == _items.Length)
        {
            var bigger = new OutboundItem[_items.Length * 2];
            for (var i = 0; i < _count; i++)
            {
                bigger[i] = _items[(_head + i) % _items.Length];
            }

            _items = bigger;
            _head = 0;
        }

        _items[(_head + _count) % _items.Length] = item;
        _count++;
        _bytes += item.Size;
        if (_waiting)
        {
            _waiting = false;
            _signal.SetResult(true);
        }

        return true;
    }

    /// <summary>
    /// Drop-oldest: removes the oldest droppable items until <paramref name="size"/> more bytes fit. Caller holds
    /// <see cref="SyncRoot"/>. Returns how many were dropped, or -1 if not enough could be dropped.
    /// </summary>
    public int DropOldestFor(int size)
    {
        var dropped = 0;
        for (var i = 0; i < _count && _bytes + size > MaxBytes; i++)
        {
            ref var slot = ref _items[(_head + i) % _items.Length];
            if (slot.IsDroppable)
            {
                _bytes -= slot.Size;
                slot = slot with { Kind = OutboundKind.Message, Size = 0, Message = null, Subscription = null, IsDroppable = false };
                dropped++;
            }
        }

        return _bytes + size <= MaxBytes ? dropped : -1;
    }

    /// <summary>No more items will be added; the writer drains what is there and stops.</summary>
    public void Complete()
    {
        lock (_gate)
        {
            _completed = true;
            if (_waiting)
            {
                _waiting = false;
                _signal.SetResult(false);
            }
        }
    }

    public bool IsCompleted
    {
        get
        {
            lock (_gate)
            {
                return _completed;
            }
        }
    }

    /// <summary>Takes the next item (writer only).</summary>
    public bool TryDequeue(out OutboundItem item)
    {
        lock (_gate)
        {
            if (_count == 0)
            {
                item = default;
                return false;
            }

            ref var slot = ref _items[_head];
            item = slot;
            slot = default;
            _head = (_head + 1) % _items.Length;
            _count--;
            _bytes -= item.Size;
            return true;
        }
    }

    /// <summary>Waits until there is something to send (true) or the queue is completed and empty (false). Writer only.</summary>
    public ValueTask<bool> WaitToReadAsync()
    {
        lock (_gate)
        {
            if (_count > 0)
            {
                return ValueTask.FromResult(true);
            }

            if (_completed)
            {
                return ValueTask.FromResult(false);
            }

            _signal.Reset();
            _waiting = true;
            return new ValueTask<bool>(this, _signal.Version);
        }
    }

    bool IValueTaskSource<bool>.GetResult(short token) => _signal.GetResult(token);

    ValueTaskSourceStatus IValueTaskSource<bool>.GetStatus(short token) => _signal.GetStatus(token);

    void IValueTaskSource<bool>.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _signal.OnCompleted(continuation, state, token, flags);
}
