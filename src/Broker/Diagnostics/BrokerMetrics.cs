using System.Diagnostics.Metrics;

namespace Broker.Diagnostics;

/// <summary>The broker's <see cref="System.Diagnostics.Metrics"/> instruments (meter "StompBroker").</summary>
internal sealed class BrokerMetrics : IDisposable
{
    public const string MeterName = "StompBroker";

    private readonly Meter _meter;

    public BrokerMetrics(IMeterFactory meters)
    {
        ArgumentNullException.ThrowIfNull(meters);
        _meter = meters.Create(MeterName);
        ConnectionsOpened = _meter.CreateCounter<long>("stompbroker.connections.opened", "{connection}", "Connections accepted, by transport");
        ConnectionsClosed = _meter.CreateCounter<long>("stompbroker.connections.closed", "{connection}", "Connections closed, by reason");
        FramesIn = _meter.CreateCounter<long>("stompbroker.frames.received", "{frame}", "Frames received, by command");
        FramesOut = _meter.CreateCounter<long>("stompbroker.frames.sent", "{frame}", "Frames sent, by kind");
        BytesIn = _meter.CreateCounter<long>("stompbroker.bytes.received", "By", "Bytes received");
        BytesOut = _meter.CreateCounter<long>("stompbroker.bytes.sent", "By", "Bytes sent");
        MessagesPublished = _meter.CreateCounter<long>("stompbroker.messages.published", "{message}", "Messages published, by destination kind");
        MessagesDelivered = _meter.CreateCounter<long>("stompbroker.messages.delivered", "{message}", "Messages delivered to subscribers");
        MessagesAcked = _meter.CreateCounter<long>("stompbroker.messages.acked", "{message}", "Messages acknowledged");
        MessagesNacked = _meter.CreateCounter<long>("stompbroker.messages.nacked", "{message}", "Messages refused with NACK");
        MessagesRedelivered = _meter.CreateCounter<long>("stompbroker.messages.redelivered", "{message}", "Messages delivered again");
        MessagesDropped = _meter.CreateCounter<long>("stompbroker.messages.dropped", "{message}", "Messages dropped, by reason");
        SlowConsumers = _meter.CreateCounter<long>("stompbroker.slow_consumers", "{event}", "Slow-consumer policy applications, by policy");
        ConnectionsRefused = _meter.CreateCounter<long>("stompbroker.connections.refused", "{connection}", "Connections refused, by reason");
        Errors = _meter.CreateCounter<long>("stompbroker.errors", "{error}", "ERROR frames sent, by kind");
        LimitBreaches = _meter.CreateCounter<long>("stompbroker.limits.breached", "{breach}", "Per-connection limits reached, by limit");
        AuthenticationFailures = _meter.CreateCounter<long>("stompbroker.authentication.failures", "{failure}", "Refused CONNECTs, by provider outcome");
        AuthorizationDenials = _meter.CreateCounter<long>("stompbroker.authorization.denials", "{denial}", "Refused SEND and SUBSCRIBE frames, by operation");
    }

    public Meter Meter => _meter;

    /// <summary>Gauges read at scrape time: live connections, backend links, and messages waiting per destination.</summary>
    public void ObserveState(Sessions.SessionRegistry registry, Routing.VirtualHosts virtualHosts)
    {
        ArgumentNullException.ThrowIfNull(registry);
        ArgumentNullException.ThrowIfNull(virtualHosts);
        _meter.CreateObservableGauge("stompbroker.connections.current", () => registry.Count, "{connection}", "Connections open now");
        _meter.CreateObservableGauge(
            "stompbroker.backend.connected",
            () => Backends(virtualHosts).Select(b => new Measurement<int>(b.Status.State is "disconnected" ? 0 : 1, new KeyValuePair<string, object?>("vhost", b.Name))),
            description: "1 while the backend can take messages");
        _meter.CreateObservableCounter(
            "stompbroker.backend.reconnects",
            () => Backends(virtualHosts).Select(b => new Measurement<long>(b.Status.Reconnects, new KeyValuePair<string, object?>("vhost", b.Name))),
            description: "Times the backend link was re-established");
        _meter.CreateObservableGauge(
            "stompbroker.queue.depth",
            () => QueueDepths(virtualHosts),
            "{message}",
            "Messages waiting, by destination (where the backend can tell)");
    }

    private static IEnumerable<(string Name, Status.IBackendStatus Status)> Backends(Routing.VirtualHosts virtualHosts) =>
        virtualHosts.All.Where(b => b.Value is Status.IBackendStatus).Select(b => (b.Key, (Status.IBackendStatus)b.Value));

    private static List<Measurement<int>> QueueDepths(Routing.VirtualHosts virtualHosts)
    {
        var measurements = new List<Measurement<int>>();
        foreach (var (name, status) in Backends(virtualHosts))
        {
            var usage = new Dictionary<string, Status.DestinationUsage>(StringComparer.Ordinal);
            status.CollectDestinations(usage);
            foreach (var (destination, use) in usage)
            {
                if (use.Depth is { } depth)
                {
                    measurements.Add(new Measurement<int>(depth, new("vhost", name), new("destination", destination)));
                }
            }
        }

        return measurements;
    }

    public Counter<long> ConnectionsOpened { get; }

    public Counter<long> ConnectionsClosed { get; }

    public Counter<long> FramesIn { get; }

    public Counter<long> FramesOut { get; }

    public Counter<long> BytesIn { get; }

    public Counter<long> BytesOut { get; }

    public Counter<long> MessagesPublished { get; }

    public Counter<long> MessagesDelivered { get; }

    public Counter<long> MessagesAcked { get; }

    public Counter<long> MessagesNacked { get; }

    public Counter<long> MessagesRedelivered { get; }

    public Counter<long> MessagesDropped { get; }

    public Counter<long> SlowConsumers { get; }

    public Counter<long> ConnectionsRefused { get; }

    public Counter<long> Errors { get; }

    public Counter<long> LimitBreaches { get; }

    public Counter<long> AuthenticationFailures { get; }

    public Counter<long> AuthorizationDenials { get; }

    public void Dispose() => _meter.Dispose();
}
