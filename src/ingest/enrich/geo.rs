//! GeoIP: IP → country, region, city with a MaxMind database (`maxminddb`).
//! The IP is only looked up, never kept.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use maxminddb::{Reader, geoip2};

/// Why a GeoIP database could not be used.
#[derive(Debug, thiserror::Error)]
#[error("GeoIP database {path} cannot be used: {reason}")]
pub struct GeoError {
    pub path: PathBuf,
    pub reason: String,
}

/// Where an IP is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GeoInfo {
    /// ISO 3166-1 alpha-2, e.g. `GB`.
    pub country: Option<String>,
    /// ISO 3166-2, e.g. `GB-ENG` (the first, largest subdivision).
    pub region: Option<String>,
    /// English city name.
    pub city: Option<String>,
}

/// An opened, verified MaxMind database (City or Country).
pub struct Geo {
    reader: Reader<Vec<u8>>,
}

impl Geo {
    /// Open and fully verify the database, so a corrupt file fails at start-up, not mid-request.
    pub fn open(path: &Path) -> Result<Self, GeoError> {
        let fail = |reason: String| GeoError { path: path.to_owned(), reason };
        let reader = Reader::open_readfile(path).map_err(|e| fail(e.to_string()))?;
        reader.verify().map_err(|e| fail(format!("verification failed: {e}")))?;
        let kind = &reader.metadata().database_type;
        if !kind.contains("City") && !kind.contains("Country") {
            return Err(fail(format!("database type {kind:?} has no location data; use a City or Country database")));
        }
        Ok(Self { reader })
    }

    /// Look `ip` up; unknown or private addresses give an empty answer.
    pub fn lookup(&self, ip: IpAddr) -> GeoInfo {
        let record = self.reader.lookup(ip).ok().and_then(|r| r.decode::<geoip2::City>().ok().flatten());
        let Some(c) = record else { return GeoInfo::default() };
        let country = c.country.iso_code.map(str::to_owned);
        let region = match (&country, c.subdivisions.first().and_then(|s| s.iso_code)) {
            (Some(cc), Some(sub)) => Some(format!("{cc}-{sub}")),
            _ => None,
        };
        GeoInfo { country, region, city: c.city.names.english.map(str::to_owned) }
    }
}
