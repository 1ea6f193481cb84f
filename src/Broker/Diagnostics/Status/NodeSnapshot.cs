using System.Text.Json;
using System.Text.Json.Serialization;

namespace Broker.Diagnostics.Status;

/// <summary>
/// One node's state at one moment: what <c>GET /api/status</c> answers and what is published to
/// <c>/topic/stompbroker.status</c>, so a page sees every node of a cluster (the RabbitMQ backend carries each node's
/// snapshot to every other node's subscribers).
/// </summary>
/// <param name="Node">Identifies the node: machine, process id and port.</param>
/// <param name="Machine">The machine's name.</param>
/// <param name="ProcessId">The broker's process id.</param>
/// <param name="Version">The broker's version.</param>
/// <param name="Timestamp">When the snapshot was taken.</param>
/// <param name="StartedAt">When the broker started.</param>
/// <param name="UptimeSeconds">Seconds since the broker started.</param>
/// <param name="IntervalSeconds">How often snapshots are taken; a page treats a node as gone after a few missed ones.</param>
/// <param name="WebSocketPath">The STOMP WebSocket endpoint's path, for the pages.</param>
/// <param name="Connections">Open connections (counted against the connection limits).</param>
/// <param name="Sessions">Connections with a STOMP session.</param>
/// <param name="Subscriptions">This node's subscriptions, over every destination and virtual host.</param>
/// <param name="PublishedPerSecond">Messages published through this node per second, over the last interval.</param>
/// <param name="Published">Messages published through this node since it started.</param>
/// <param name="Backends">The backend of each virtual host.</param>
/// <param name="Process">Process figures.</param>
/// <param name="Destinations">The busiest destinations (at most <see cref="StatusPublisher.MaxDestinations"/>).</param>
/// <param name="DestinationsTotal">How many destinations are active in all, listed or not.</param>
internal sealed record NodeSnapshot(
    string Node,
    string Machine,
    int ProcessId,
    string Version,
    DateTimeOffset Timestamp,
    DateTimeOffset StartedAt,
    double UptimeSeconds,
    double IntervalSeconds,
    string WebSocketPath,
    int Connections,
    int Sessions,
    int Subscriptions,
    double PublishedPerSecond,
    long Published,
    IReadOnlyList<BackendSnapshot> Backends,
    ProcessSnapshot Process,
    IReadOnlyList<DestinationSnapshot> Destinations,
    int DestinationsTotal);

/// <summary>A virtual host's backend.</summary>
/// <param name="VirtualHost">The virtual host.</param>
/// <param name="Kind">"in-memory" or "rabbitmq".</param>
/// <param name="State">"up", "connected" or "disconnected".</param>
/// <param name="Reconnects">Times the link to RabbitMQ was re-established.</param>
internal sealed record BackendSnapshot(string VirtualHost, string Kind, string State, long Reconnects);

/// <summary>Process figures.</summary>
/// <param name="WorkingSetBytes">Physical memory in use.</param>
/// <param name="GcHeapBytes">Bytes allocated on the managed heap.</param>
/// <param name="Threads">Threads of the process.</param>
/// <param name="CpuPercent">CPU used over the last interval, as a share of all cores (0-100).</param>
/// <param name="GcCollections">Garbage collections since start (all generations).</param>
internal sealed record ProcessSnapshot(long WorkingSetBytes, long GcHeapBytes, int Threads, double CpuPercent, int GcCollections);

/// <summary>A destination on this node.</summary>
/// <param name="VirtualHost">Its virtual host.</param>
/// <param name="Destination">The destination header value, such as <c>/topic/chat.lobby</c>.</param>
/// <param name="Kind">topic, queue, reply-queue, exchange, amq-queue.</param>
/// <param name="PublishedPerSecond">Messages published to it through this node per second, over the last interval.</param>
/// <param name="Published">Messages published to it through this node while it has been tracked.</param>
/// <param name="Subscribers">This node's subscribers (topics) or consumers (queues).</param>
/// <param name="Depth">Messages waiting; null where unknown (RabbitMQ) or not applicable (topics).</param>
internal sealed record DestinationSnapshot(string VirtualHost, string Destination, string Kind, double PublishedPerSecond, long Published, int Subscribers, int? Depth);

/// <summary>Source-generated JSON for the snapshot (camelCase, no reflection).</summary>
[JsonSourceGenerationOptions(JsonSerializerDefaults.Web, DefaultIgnoreCondition = JsonIgnoreCondition.Never)]
[JsonSerializable(typeof(NodeSnapshot))]
internal sealed partial class StatusJsonContext : JsonSerializerContext;
