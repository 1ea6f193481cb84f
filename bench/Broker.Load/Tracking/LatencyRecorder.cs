using System.Diagnostics;
using Broker.Load.Reporting;

namespace Broker.Load.Tracking;

/// <summary>
/// End-to-end latencies of the messages sent inside the measured window, kept whole (a few hundred thousand longs)
/// so the percentiles are exact rather than estimated.
/// </summary>
internal sealed class LatencyRecorder
{
    private readonly long[] _samples;
    private long _from = long.MaxValue;
    private long _to = long.MaxValue;
    private int _count;

    public LatencyRecorder(int capacity) => _samples = new long[capacity];

    /// <summary>Only messages stamped in [from, to) count: the warm-up and the drain are left out.</summary>
    public void SetWindow(long from, long to)
    {
        Volatile.Write(ref _to, to);
        Volatile.Write(ref _from, from);
    }

    public void Record(long sentAt, long receivedAt)
    {
        if (sentAt < Volatile.Read(ref _from) || sentAt >= Volatile.Read(ref _to))
        {
            return;
        }

        var slot = Interlocked.Increment(ref _count) - 1;
        if (slot < _samples.Length)
        {
            _samples[slot] = receivedAt - sentAt;
        }
    }

    public LatencySummary Summarize()
    {
        var count = Math.Min(_count, _samples.Length);
        var samples = _samples[..count];
        Array.Sort(samples);
        double Ms(long ticks) => ticks * 1000.0 / Stopwatch.Frequency;
        double Percentile(double p) => count == 0 ? 0 : Ms(samples[Math.Clamp((int)Math.Ceiling(p * count) - 1, 0, count - 1)]);
        double sum = 0;
        foreach (var sample in samples)
        {
            sum += sample;
        }

        return new LatencySummary
        {
            Samples = count,
            P50 = Percentile(0.50),
            P90 = Percentile(0.90),
            P99 = Percentile(0.99),
            P999 = Percentile(0.999),
            Max = count == 0 ? 0 : Ms(samples[count - 1]),
            Mean = count == 0 ? 0 : Ms((long)(sum / count)),
        };
    }
}
