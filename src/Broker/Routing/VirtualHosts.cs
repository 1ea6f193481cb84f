using Broker.Backends.InMemory;
using Broker.Backends.RabbitMq;
using Broker.Configuration;
using Microsoft.Extensions.Options;

namespace Broker.Routing;

/// <summary>
/// One backend per virtual host (the CONNECT <c>host</c> header), so destinations of different virtual hosts never meet.
/// The default virtual host uses the app's backend; every other one gets its own: a separate in-memory backend, or a
/// RabbitMQ connection to the RabbitMQ virtual host of the same name.
/// </summary>
internal sealed class VirtualHosts : IHostedService, IAsyncDisposable
{
    private readonly Dictionary<string, IMessageBackend> _backends = new(StringComparer.Ordinal);
    private readonly List<RabbitMqBackend> _owned = [];

    public VirtualHosts(IOptions<BrokerOptions> options, IMessageBackend defaultBackend, ILoggerFactory loggers)
    {
        ArgumentNullException.ThrowIfNull(options);
        var broker = options.Value;
        Default = broker.Security.DefaultVirtualHost;
        _backends[Default] = defaultBackend;
        foreach (var name in broker.Security.VirtualHosts.Where(v => v != Default))
        {
            if (broker.Backend == BackendKind.RabbitMq)
            {
                var uri = new UriBuilder(broker.RabbitMq.Uri) { Path = "/" + Uri.EscapeDataString(name) };
                var copy = new BrokerOptions { Backend = broker.Backend, RabbitMq = CopyWithUri(broker.RabbitMq, uri.Uri.ToString()) };
                var backend = new RabbitMqBackend(Options.Create(copy), loggers.CreateLogger<RabbitMqBackend>());
                _owned.Add(backend);
                _backends[name] = backend;
            }
            else
            {
                // One storage budget for the whole node, whatever the virtual host.
                _backends[name] = new InMemoryBackend(defaultBackend is InMemoryBackend shared ? shared.Budget : QueueStorageBudget.Unlimited);
            }
        }
    }

    /// <summary>The virtual host of a CONNECT without a host header.</summary>
    public string Default { get; }

    public bool TryGet(string name, out IMessageBackend backend) => _backends.TryGetValue(name, out backend!);

    /// <summary>Every virtual host with its backend (for the status page).</summary>
    public IReadOnlyDictionary<string, IMessageBackend> All => _backends;

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        foreach (var backend in _owned)
        {
            await backend.StartAsync(cancellationToken);
        }
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        foreach (var backend in _owned)
        {
            await backend.StopAsync(cancellationToken);
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var backend in _owned)
        {
            await backend.DisposeAsync();
        }
    }

    private static RabbitMqOptions CopyWithUri(RabbitMqOptions source, string uri) => new()
    {
        Uri = uri,
        TopicExchangePrefix = source.TopicExchangePrefix,
        TemporaryQueuePrefix = source.TemporaryQueuePrefix,
        ReconnectMinDelay = source.ReconnectMinDelay,
        ReconnectMaxDelay = source.ReconnectMaxDelay,
        PublishTimeout = source.PublishTimeout,
        DefaultPrefetch = source.DefaultPrefetch,
    };
}
