using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Globalization;
using System.Text;

namespace Broker.Diagnostics;

/// <summary>
/// Serves the broker's <see cref="System.Diagnostics.Metrics"/> instruments in the Prometheus text format
/// (<c>GET /metrics</c>): counters as <c>_total</c>, up-down counters and observable gauges as gauges. It listens to
/// this broker's own meter only, so several brokers in one process (tests) never mix their figures.
/// Measurements come several times per message, so recording one allocates nothing once its series exists: the label
/// text of a tag set is made once and looked up by the tags themselves, and each series is a cell added to in place.
/// </summary>
internal sealed class PrometheusExporter : IDisposable
{
    private readonly MeterListener _listener = new();
    private readonly ConcurrentDictionary<Instrument, ConcurrentDictionary<string, SeriesCell>> _series = new();
    private readonly ConcurrentDictionary<TagSet, string> _labels = new();
    private readonly Lock _scrape = new();

    public PrometheusExporter(BrokerMetrics metrics)
    {
        ArgumentNullException.ThrowIfNull(metrics);
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (ReferenceEquals(instrument.Meter, metrics.Meter))
            {
                var series = _series.GetOrAdd(instrument, static _ => new ConcurrentDictionary<string, SeriesCell>(StringComparer.Ordinal));
                listener.EnableMeasurementEvents(instrument, series);
            }
        };
        _listener.SetMeasurementEventCallback<long>((instrument, value, tags, state) => Record(instrument, value, tags, state));
        _listener.SetMeasurementEventCallback<int>((instrument, value, tags, state) => Record(instrument, value, tags, state));
        _listener.SetMeasurementEventCallback<double>((instrument, value, tags, state) => Record(instrument, value, tags, state));
        _listener.Start();
    }

    /// <summary>The current figures as Prometheus text.</summary>
    public string Render()
    {
        lock (_scrape)
        {
            _listener.RecordObservableInstruments();
            var text = new StringBuilder();
            foreach (var (instrument, series) in _series.OrderBy(i => i.Key.Name, StringComparer.Ordinal))
            {
                var isCounter = instrument is Counter<long> or Counter<int> or Counter<double> or ObservableCounter<long>;
                var name = instrument.Name.Replace('.', '_').Replace('-', '_') + (isCounter ? "_total" : "");
                text.Append("# HELP ").Append(name).Append(' ').Append(instrument.Description ?? instrument.Name).Append('\n');
                text.Append("# TYPE ").Append(name).Append(isCounter ? " counter\n" : " gauge\n");
                if (series.IsEmpty)
                {
                    text.Append(name).Append(" 0\n");
                }

                foreach (var (labels, cell) in series.OrderBy(s => s.Key, StringComparer.Ordinal))
                {
                    text.Append(name).Append(labels).Append(' ').Append(cell.Value.ToString(CultureInfo.InvariantCulture)).Append('\n');
                }
            }

            return text.ToString();
        }
    }

    public void Dispose() => _listener.Dispose();

    private void Record(Instrument instrument, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags, object? state)
    {
        if (state is not ConcurrentDictionary<string, SeriesCell> series)
        {
            return;
        }

        var labels = tags.Length switch
        {
            0 => "",
            1 => LabelsOf(new TagSet(tags[0].Key, tags[0].Value, null, null), tags),
            2 => LabelsOf(new TagSet(tags[0].Key, tags[0].Value, tags[1].Key, tags[1].Value), tags),
            _ => Labels(tags),
        };
        if (!series.TryGetValue(labels, out var cell))
        {
            cell = series.GetOrAdd(labels, static _ => new SeriesCell());
        }

        if (instrument.IsObservable)
        {
            cell.Set(value); // an observation is the current value
        }
        else
        {
            cell.Add(value);
        }
    }

    private string LabelsOf(TagSet key, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        if (_labels.TryGetValue(key, out var labels))
        {
            return labels;
        }

        labels = Labels(tags);
        return _labels.GetOrAdd(key, labels);
    }

    private static string Labels(ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        if (tags.IsEmpty)
        {
            return "";
        }

        var text = new StringBuilder("{");
        var sorted = tags.ToArray();
        Array.Sort(sorted, (a, b) => string.CompareOrdinal(a.Key, b.Key));
        for (var i = 0; i < sorted.Length; i++)
        {
            if (i > 0)
            {
                text.Append(',');
            }

            var value = Convert.ToString(sorted[i].Value, CultureInfo.InvariantCulture) ?? "";
            text.Append(sorted[i].Key.Replace('.', '_').Replace('-', '_')).Append("=\"")
                .Append(value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal))
                .Append('"');
        }

        return text.Append('}').ToString();
    }

    // Up to two tags, as the broker's instruments have; values compare by Equals (strings by content).
    private readonly record struct TagSet(string? Key1, object? Value1, string? Key2, object? Value2);

    /// <summary>One series' value, added to without a lock.</summary>
    private sealed class SeriesCell
    {
        private long _bits;

        public double Value => BitConverter.Int64BitsToDouble(Volatile.Read(ref _bits));

        public void Set(double value) => Volatile.Write(ref _bits, BitConverter.DoubleToInt64Bits(value));

        public void Add(double value)
        {
            var seen = Volatile.Read(ref _bits);
            while (true)
            {
                var updated = BitConverter.DoubleToInt64Bits(BitConverter.Int64BitsToDouble(seen) + value);
                var previous = Interlocked.CompareExchange(ref _bits, updated, seen);
                if (previous == seen)
                {
                    return;
                }

                seen = previous;
            }
        }
    }
}
