namespace Broker.Backends.InMemory;

/// <summary>
/// The bytes of message bodies and headers the in-memory queues may hold in all, from a message's arrival until it is
/// acknowledged or dropped. A SEND that would go over is refused, so no client can grow the broker's memory past it.
/// </summary>
public sealed class QueueStorageBudget(long maxBytes)
{
    private long _used;

    /// <summary>No limit (tests and tools that build a backend directly).</summary>
    public static QueueStorageBudget Unlimited => new(long.MaxValue);

    /// <summary>The budget.</summary>
    public long MaxBytes { get; } = maxBytes;

    /// <summary>Bytes held now.</summary>
    public long UsedBytes => Interlocked.Read(ref _used);

    /// <summary>Takes <paramref name="bytes"/> from the budget, or returns false (and takes nothing) when they do not fit.</summary>
    public bool TryReserve(long bytes)
    {
        if (Interlocked.Add(ref _used, bytes) <= MaxBytes)
        {
            return true;
        }

        Interlocked.Add(ref _used, -bytes);
        return false;
    }

    /// <summary>Gives bytes back.</summary>
    public void Release(long bytes) => Interlocked.Add(ref _used, -bytes);
}
