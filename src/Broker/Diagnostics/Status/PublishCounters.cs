using System.Collections.Concurrent;

namespace Broker.Diagnostics.Status;

/// <summary>
/// Messages published per destination, counted by a backend on each publish (one dictionary look-up and one
/// interlocked increment). The status publisher reads the counters once a second to turn them into rates, and forgets
/// destinations that have gone quiet. Past <see cref="MaxDestinations"/> distinct names (a flood of unique
/// destinations), new names are counted in <see cref="Total"/> only, so the table cannot grow without bound.
/// </summary>
internal sealed class PublishCounters
{
    /// <summary>Most destinations counted one by one.</summary>
    public const int MaxDestinations = 10_000;

    private readonly ConcurrentDictionary<string, PublishCounter> _counters = new(StringComparer.Ordinal);
    private int _count;
    private long _total;

    /// <summary>Every message counted, including those of destinations past the limit.</summary>
    public long Total => Interlocked.Read(ref _total);

    /// <summary>Counts one message published to <paramref name="destination"/> (the destination header's value).</summary>
    public void Increment(string destination)
    {
        Interlocked.Increment(ref _total);
        if (!_counters.TryGetValue(destination, out var counter))
        {
            if (Volatile.Read(ref _count) >= MaxDestinations)
            {
                return;
            }

            var fresh = new PublishCounter();
            counter = _counters.GetOrAdd(destination, fresh);
            if (ReferenceEquals(counter, fresh))
            {
                Interlocked.Increment(ref _count);
            }
        }

        counter.Increment();
    }

    /// <summary>The destinations counted now, with their counters (a moment's snapshot).</summary>
    public List<KeyValuePair<string, PublishCounter>> Entries() => [.. _counters];

    /// <summary>Drops a quiet destination's counter; a message counted meanwhile starts a new one.</summary>
    public void Forget(string destination, PublishCounter counter)
    {
        if (_counters.TryRemove(new KeyValuePair<string, PublishCounter>(destination, counter)))
        {
            Interlocked.Decrement(ref _count);
        }
    }
}

/// <summary>One destination's count of published messages.</summary>
internal sealed class PublishCounter
{
    private long _value;

    public long Value => Interlocked.Read(ref _value);

    public void Increment() => Interlocked.Increment(ref _value);
}
