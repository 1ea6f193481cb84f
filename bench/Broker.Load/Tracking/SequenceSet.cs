using System.Numerics;

namespace Broker.Load.Tracking;

/// <summary>
/// The sequence numbers one receiver got from one producer: a bit per number, so loss and duplicates are exact,
/// plus the last number seen, so a step backwards (a broken per-producer order) is counted. One writer.
/// </summary>
internal sealed class SequenceSet
{
    private ulong[] _bits = new ulong[1024];
    private long _last = -1;

    public long Count { get; private set; }

    public long Duplicates { get; private set; }

    public long Reordered { get; private set; }

    public void Add(long sequence)
    {
        if (sequence < 0)
        {
            Duplicates++;
            return;
        }

        var word = (int)(sequence >> 6);
        if (word >= _bits.Length)
        {
            Array.Resize(ref _bits, Math.Max(word + 1, _bits.Length * 2));
        }

        var mask = 1UL << (int)(sequence & 63);
        if ((_bits[word] & mask) != 0)
        {
            Duplicates++;
            return;
        }

        _bits[word] |= mask;
        Count++;
        if (sequence < _last)
        {
            Reordered++;
        }

        _last = sequence;
    }

    /// <summary>How many distinct numbers below <paramref name="limit"/> the sets hold together.</summary>
    public static long UnionCount(IEnumerable<SequenceSet> sets, long limit)
    {
        var words = (int)((limit + 63) >> 6);
        var union = new ulong[words];
        foreach (var set in sets)
        {
            var n = Math.Min(words, set._bits.Length);
            for (var i = 0; i < n; i++)
            {
                union[i] |= set._bits[i];
            }
        }

        if (words > 0 && (limit & 63) != 0)
        {
            union[words - 1] &= (1UL << (int)(limit & 63)) - 1;
        }

        long count = 0;
        foreach (var word in union)
        {
            count += BitOperations.PopCount(word);
        }

        return count;
    }
}
