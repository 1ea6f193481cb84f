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
        ConnectionsRefused = _meter.CreateCounter<long>("stompbroker.connections.refused", "{connection}", "Connections refused, by reason");
        Errors = _meter.CreateCounter<long>("stompbroker.errors", "{error}", "ERROR frames sent, by kind");
        LimitBreaches = _meter.CreateCounter<long>("stompbroker.limits.breached", "{breach}", "Per-connection limits reached, by limit");
        AuthenticationFailures = _meter.CreateCounter<long>("stompbroker.authentication.failures", "{failure}", "Refused CONNECTs, by provider outcome");
        AuthorizationDenials = _meter.CreateCounter<long>("stompbroker.authorization.denials", "{denial}", "Refused SEND and SUBSCRIBE frames, by operation");
    }

    public Counter<long> ConnectionsRefused { get; }

    public Counter<long> Errors { get; }

    public Counter<long> LimitBreaches { get; }

    public Counter<long> AuthenticationFailures { get; }

    public Counter<long> AuthorizationDenials { get; }

    public void Dispose() => _meter.Dispose();
}
