using System.Text.Json;
using System.Text.Json.Serialization;

namespace Broker.Load.Reporting;

/// <summary>What one <c>stompload run</c> measured; written with <c>--json</c> and read back by <c>stompload report</c>.</summary>
internal sealed class LoadResult
{
    public string Broker { get; set; } = "";

    public string? Label { get; set; }

    /// <summary>"tcp" or "ws".</summary>
    public string Transport { get; set; } = "";

    /// <summary>"p2p", "fanout", "latency" or "conns".</summary>
    public string Scenario { get; set; } = "";

    /// <summary>The row of the comparison table, e.g. "p2p 4→4, 100 B".</summary>
    public string Case { get; set; } = "";

    public string Url { get; set; } = "";

    public bool Sink { get; set; }

    public DateTimeOffset StartedAt { get; set; }

    public LoadParameters Parameters { get; set; } = new();

    public long Sent { get; set; }

    /// <summary>Deliveries expected: sent × subscribers for a fan-out, sent otherwise, 0 for the sink.</summary>
    public long Expected { get; set; }

    public long Received { get; set; }

    public long Lost { get; set; }

    public long Duplicates { get; set; }

    public long Reordered { get; set; }

    /// <summary>The measured window (after the warm-up), in seconds.</summary>
    public double DurationSeconds { get; set; }

    public double SentPerSecond { get; set; }

    public double ReceivedPerSecond { get; set; }

    public LatencySummary? Latency { get; set; }

    public int? ConnectionsOpened { get; set; }

    public long? RssBeforeBytes { get; set; }

    public long? RssAfterBytes { get; set; }

    public long? RssPerConnectionBytes { get; set; }

    public bool Ok { get; set; }

    public string? Error { get; set; }

    public static JsonSerializerOptions JsonOptions { get; } = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };
}

internal sealed class LoadParameters
{
    public int Producers { get; set; }

    public int Consumers { get; set; }

    public int Subscribers { get; set; }

    public int BodyBytes { get; set; }

    public int? Rate { get; set; }

    public int? Connections { get; set; }

    public int ReceiptEvery { get; set; }

    public int ReceiptsOutstanding { get; set; }

    public int Window { get; set; }

    public double WarmupSeconds { get; set; }

    public string Destination { get; set; } = "";
}

/// <summary>End-to-end latency in milliseconds over the measured window.</summary>
internal sealed class LatencySummary
{
    public long Samples { get; set; }

    public double P50 { get; set; }

    public double P90 { get; set; }

    public double P99 { get; set; }

    public double P999 { get; set; }

    public double Max { get; set; }

    public double Mean { get; set; }

    /// <summary>Messages the paced producer wrote at a time, over the whole run: about rate ÷ 1,000 while it keeps to
    /// the millisecond, more when it is woken late and catches up in one burst.</summary>
    public double MessagesPerWrite { get; set; }
}
