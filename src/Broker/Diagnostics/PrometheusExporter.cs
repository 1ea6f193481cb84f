using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Globalization;
using System.Text;

namespace Broker.Diagnostics;

/// <summary>
/// Serves the broker's <see cref="System.Diagnostics.Metrics"/> instruments in the Prometheus text format
/// (<c>GET /metrics</c>): counters as <c>_total</c>, up-down counters and observable gauges as gauges. It listens to
/// this broker's own meter only, so several brokers in one process (tests) never mix their figures.
/// </summary>
internal sealed class PrometheusExporter : IDisposable
{
    private readonly MeterListener _listener = new();
    private readonly ConcurrentDictionary<Instrument, ConcurrentDictionary<string, double>> _series = new();
    private readonly Lock _scrape = new();

    public PrometheusExporter(BrokerMetrics metrics)
    {
        ArgumentNullException.ThrowIfNull(metrics);
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (ReferenceEquals(instrument.Meter, metrics.Meter))
            {
                _series.TryAdd(instrument, new ConcurrentDictionary<string, double>(StringComparer.Ordinal));
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) => Record(instrument, value, tags));
        _listener.SetMeasurementEventCallback<int>((instrument, value, tags, _) => Record(instrument, value, tags));
        _listener.SetMeasurementEventCallback<double>((instrument, value, tags, _) => Record(instrument, value, tags));
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

                foreach (var (labels, value) in series.OrderBy(s => s.Key, StringComparer.Ordinal))
                {
                    text.Append(name).Append(labels).Append(' ').Append(value.ToString(CultureInfo.InvariantCulture)).Append('\n');
                }
            }

            return text.ToString();
        }
    }

    public void Dispose() => _listener.Dispose();

    private void Record(Instrument instrument, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        if (!_series.TryGetValue(instrument, out var series))
        {
            return;
        }

        var labels = Labels(tags);
        if (instrument.IsObservable)
        {
            series[labels] = value; // an observation is the current value
        }
        else
        {
            series.AddOrUpdate(labels, value, (_, total) => total + value);
        }
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
}
