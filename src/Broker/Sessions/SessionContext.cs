using Broker.Configuration;
using Broker.Diagnostics;
using Broker.Routing;
using Broker.Security;

namespace Broker.Sessions;

/// <summary>What every session shares: settings, backends per virtual host, security, metrics, the clock.</summary>
internal sealed record SessionContext(
    BrokerOptions Options,
    VirtualHosts VirtualHosts,
    SessionRegistry Registry,
    Authenticator Authenticator,
    DestinationAuthorizer Authorizer,
    BrokerMetrics Metrics,
    TimeProvider Time)
{
    /// <summary>The parser limits of a connection before its CONNECT, made once rather than per connection.</summary>
    public Stomp.StompParserLimits LimitsBeforeConnect { get; } = Options.Limits.BeforeConnect;

    /// <summary>The parser limits of a connected session, made once rather than per connection.</summary>
    public Stomp.StompParserLimits LimitsConnected { get; } = Options.Limits.Connected;
}
