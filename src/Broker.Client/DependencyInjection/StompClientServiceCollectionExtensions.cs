using Broker.Client;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers a shared <see cref="StompClient"/> in an app on the Generic Host.</summary>
public static class StompClientServiceCollectionExtensions
{
    /// <summary>
    /// Adds one <see cref="StompClient"/> for the whole app, connected when the host starts and disconnected when it
    /// stops; it logs through the app's <see cref="ILoggerFactory"/> unless the options name another.
    /// </summary>
    public static IServiceCollection AddStompClient(this IServiceCollection services, Func<IServiceProvider, StompClientOptions> options)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(options);
        services.AddSingleton(provider =>
        {
            var configured = options(provider);
            return new StompClient(configured.LoggerFactory is null
                ? configured with { LoggerFactory = provider.GetService<ILoggerFactory>() }
                : configured);
        });
        services.AddHostedService<StompClientLifetime>();
        return services;
    }

    /// <summary>Adds one <see cref="StompClient"/> with fixed options (see the other overload).</summary>
    public static IServiceCollection AddStompClient(this IServiceCollection services, StompClientOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return services.AddStompClient(_ => options);
    }

    private sealed class StompClientLifetime(StompClient client) : IHostedService
    {
        public Task StartAsync(CancellationToken cancellationToken) => client.ConnectAsync(cancellationToken);

        public async Task StopAsync(CancellationToken cancellationToken) => await client.DisposeAsync();
    }
}
