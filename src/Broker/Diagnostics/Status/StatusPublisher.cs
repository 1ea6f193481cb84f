using System.Diagnostics;
using System.Reflection;
using System.Text.Json;
using Broker.Configuration;
using Broker.Routing;
using Broker.Sessions;
using Broker.Stomp;
using Microsoft.Extensions.Options;

namespace Broker.Diagnostics.Status;

/// <summary>
/// Takes a <see cref="NodeSnapshot"/> of this node every <see cref="StatusOptions.Interval"/>: connections, sessions,
/// subscriptions, destinations with their publish rates and depths, backend state and process figures. Keeps the latest
/// for <c>GET /api/status</c> and publishes it as a JSON MESSAGE to <see cref="Topic"/> through the default virtual
/// host's backend, so with RabbitMQ every node's snapshot reaches every page. It is a topic: a slow page gets the
/// slow-consumer policy like any subscriber and never holds the publisher up.
/// </summary>
internal sealed partial class StatusPublisher : BackgroundService
{
    /// <summary>Where the snapshots go.</summary>
    public const string Topic = "/topic/stompbroker.status";

    /// <summary>Most destinations listed in one snapshot (the busiest).</summary>
    public const int MaxDestinations = 100;

    // A destination nobody published to for this many snapshots, with no subscribers or messages, is forgotten.
    private const int QuietSnapshotsBeforeForgetting = 60;

    private readonly BrokerOptions _options;
    private readonly VirtualHosts _virtualHosts;
    private readonly SessionRegistry _sessions;
    private readonly TimeProvider _time;
    private readonly ILogger<StatusPublisher> _logger;
    private readonly Lock _gate = new();
    private readonly Dictionary<(string VirtualHost, string Destination), Seen> _seen = [];
    private readonly Dictionary<string, long> _totals = new(StringComparer.Ordinal);
    private readonly long _started;
    private readonly DateTimeOffset _startedAt;
    private readonly string _version;
    private long _lastTick;
    private TimeSpan _lastCpu;
    private byte[]? _latest;
    private Task _publishing = Task.CompletedTask;

    public StatusPublisher(IOptions<BrokerOptions> options, VirtualHosts virtualHosts, SessionRegistry sessions, TimeProvider time, ILogger<StatusPublisher> logger)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options.Value;
        _virtualHosts = virtualHosts;
        _sessions = sessions;
        _time = time;
        _logger = logger;
        _started = _lastTick = time.GetTimestamp();
        _startedAt = time.GetUtcNow();
        using (var process = Process.GetCurrentProcess())
        {
            _lastCpu = process.TotalProcessorTime;
        }

        var port = _options.WebSocket.Port != 0 ? _options.WebSocket.Port : _options.Tcp.Port;
        NodeId = $"{Environment.MachineName}:{Environment.ProcessId}:{port}";
        _version = typeof(StatusPublisher).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "";
    }

    /// <summary>This node's name in the snapshots: machine, process id and listener port.</summary>
    public string NodeId { get; }

    /// <summary>The latest snapshot as UTF-8 JSON (taken now if there is none yet).</summary>
    public ReadOnlyMemory<byte> Latest => Volatile.Read(ref _latest) ?? TakeSnapshot();

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        TakeSnapshot(); // before the first tick, so /api/status has an answer at once
        using var timer = new PeriodicTimer(_options.Status.Interval, _time);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                var json = TakeSnapshot();
                // One publish at a time: while RabbitMQ is slow to confirm, snapshots are skipped rather than queued.
                if (_publishing.IsCompleted && _virtualHosts.TryGet(_virtualHosts.Default, out var backend))
                {
                    _publishing = PublishAsync(backend, json, stoppingToken);
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }

        await _publishing.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
    }

    private async Task PublishAsync(IMessageBackend backend, byte[] json, CancellationToken cancellationToken)
    {
        var message = new BrokerMessage(Topic, StompMessageTemplate.Create(
            [
                new("destination", Topic),
                new("content-type", "application/json"),
                new("stompbroker-node", NodeId),
            ],
            json));
        try
        {
            _ = Destination.TryParse(Topic, out var destination, out _);
            await await backend.PublishAsync(destination, message, cancellationToken);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
        catch (Exception ex) when (ex is BackendUnavailableException or DestinationException)
        {
            // The backend state in the snapshot already tells; /api/status still answers.
            LogNotPublished(_logger, ex.Message);
        }
    }

    /// <summary>Takes a snapshot now, keeps it as the latest and returns its JSON.</summary>
    internal byte[] TakeSnapshot()
    {
        lock (_gate)
        {
            var now = _time.GetTimestamp();
            var elapsed = Math.Max(_time.GetElapsedTime(_lastTick, now).TotalSeconds, 0.001);
            _lastTick = now;

            var backends = new List<BackendSnapshot>();
            var destinations = new List<DestinationSnapshot>();
            var subscriptions = 0;
            var published = 0L;
            var publishedDelta = 0L;
            foreach (var (virtualHost, backend) in _virtualHosts.All)
            {
                if (backend is not IBackendStatus status)
                {
                    continue;
                }

                backends.Add(new BackendSnapshot(virtualHost, status.Kind, status.State, status.Reconnects));
                var total = status.Publishes.Total;
                publishedDelta += total - _totals.GetValueOrDefault(virtualHost);
                _totals[virtualHost] = total;
                published += total;
                subscriptions += CollectDestinations(virtualHost, status, elapsed, destinations);
            }

            var listed = destinations
                .OrderByDescending(d => d.PublishedPerSecond)
                .ThenByDescending(d => d.Subscribers)
                .ThenByDescending(d => d.Depth ?? 0)
                .ThenBy(d => d.Destination, StringComparer.Ordinal)
                .Take(MaxDestinations)
                .ToList();

            var snapshot = new NodeSnapshot(
                NodeId,
                Environment.MachineName,
                Environment.ProcessId,
                _version,
                _time.GetUtcNow(),
                _startedAt,
                Math.Round(_time.GetElapsedTime(_started, now).TotalSeconds, 1),
                _options.Status.Interval.TotalSeconds,
                _options.WebSocket.Path,
                _sessions.ConnectionCount,
                _sessions.Count,
                subscriptions,
                Rate(publishedDelta, elapsed),
                published,
                backends,
                ProcessFigures(elapsed),
                listed,
                destinations.Count);
            var json = JsonSerializer.SerializeToUtf8Bytes(snapshot, StatusJsonContext.Default.NodeSnapshot);
            Volatile.Write(ref _latest, json);
            return json;
        }
    }

    // Adds the virtual host's active destinations (subscribers, waiting messages, or publishes lately) and returns its
    // subscription count. Caller holds _gate.
    private int CollectDestinations(string virtualHost, IBackendStatus status, double elapsed, List<DestinationSnapshot> into)
    {
        var usage = new Dictionary<string, DestinationUsage>(StringComparer.Ordinal);
        status.CollectDestinations(usage);
        var subscriptions = usage.Values.Sum(u => u.Subscribers);

        foreach (var (name, counter) in status.Publishes.Entries())
        {
            var key = (virtualHost, name);
            var value = counter.Value;
            var seen = _seen.TryGetValue(key, out var previous) ? previous : new Seen { Counter = counter };
            if (!ReferenceEquals(seen.Counter, counter))
            {
                seen = new Seen { Counter = counter }; // forgotten and counted again since: a new counter from 0
            }

            var delta = value - seen.Count;
            seen.Quiet = delta == 0 ? seen.Quiet + 1 : 0;
            seen.Count = value;
            var used = usage.Remove(name, out var destinationUsage);
            if (seen.Quiet >= QuietSnapshotsBeforeForgetting && !used)
            {
                status.Publishes.Forget(name, counter);
                _seen.Remove(key);
                continue;
            }

            _seen[key] = seen;
            into.Add(new DestinationSnapshot(virtualHost, name, KindOf(name), Rate(delta, elapsed), value, destinationUsage.Subscribers, used ? destinationUsage.Depth : null));
        }

        // Destinations with subscribers or messages that nobody has published to lately.
        foreach (var (name, destinationUsage) in usage)
        {
            into.Add(new DestinationSnapshot(virtualHost, name, KindOf(name), 0, 0, destinationUsage.Subscribers, destinationUsage.Depth));
        }

        return subscriptions;
    }

    private ProcessSnapshot ProcessFigures(double elapsed)
    {
        using var process = Process.GetCurrentProcess();
        var cpu = process.TotalProcessorTime;
        var cpuPercent = (cpu - _lastCpu).TotalSeconds / (elapsed * Environment.ProcessorCount) * 100;
        _lastCpu = cpu;
        var collections = 0;
        for (var generation = 0; generation <= GC.MaxGeneration; generation++)
        {
            collections += GC.CollectionCount(generation);
        }

        return new ProcessSnapshot(
            process.WorkingSet64,
            GC.GetTotalMemory(forceFullCollection: false),
            process.Threads.Count,
            Math.Round(Math.Clamp(cpuPercent, 0, 100), 1),
            collections);
    }

    private static double Rate(long delta, double seconds) => Math.Round(delta / seconds, 2);

    private static string KindOf(string destination) =>
        Destination.TryParse(destination, out var parsed, out _)
            ? parsed.Kind switch
            {
                DestinationKind.Topic => "topic",
                DestinationKind.Queue => "queue",
                DestinationKind.TempQueue => "temp-queue",
                DestinationKind.ReplyQueue => "reply-queue",
                DestinationKind.Exchange => "exchange",
                DestinationKind.AmqQueue => "amq-queue",
                _ => "other",
            }
            : "other";

    [LoggerMessage(300, LogLevel.Debug, "Status snapshot not published to " + Topic + ": {Error}")]
    private static partial void LogNotPublished(ILogger logger, string error);

    private sealed class Seen
    {
        public required PublishCounter Counter { get; set; }

        public long Count { get; set; }

        public int Quiet { get; set; }
    }
}
