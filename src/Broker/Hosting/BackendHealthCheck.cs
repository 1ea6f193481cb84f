using Broker.Backends.RabbitMq;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Broker.Hosting;

/// <summary>Ready when the backend can take messages: always for in-memory, while connected for RabbitMQ.</summary>
internal sealed class BackendHealthCheck(IServiceProvider services) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        if (services.GetService<RabbitMqBackend>() is not { } rabbit)
        {
            return Task.FromResult(HealthCheckResult.Healthy("in-memory backend"));
        }

        return Task.FromResult(rabbit.State == BackendState.Connected
            ? HealthCheckResult.Healthy($"RabbitMQ connected ({rabbit.Reconnects} reconnects)")
            : HealthCheckResult.Unhealthy("RabbitMQ not connected; reconnecting"));
    }
}
