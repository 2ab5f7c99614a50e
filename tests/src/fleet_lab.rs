//! A fleet on one machine for the multi-device tests (`tests/tests/fleet_many.rs`) and
//! `jos-bench --fleet`: a real Mosquitto broker on a free loopback port ([`Mosquitto`], killed on
//! drop, restartable on the same port) and N emulated devices ([`FleetLab`]) whose boot
//! configurations name it (10.0.2.2 through QEMU's user-mode network), share one fleet key and
//! trust one developer signing key; plus a `$JOS_HOME` holding this client's side (signing key,
//! client key, the devices pinned, the fleet key) for `jos-cli fleet` and `jos_client::fleet`.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use jos_abi::codec::List;
use jos_abi::config::{ConfigRepr, FleetKey, Network, Policy, Sections};
use jos_abi::fleet::BrokerSettings;
use jos_abi::signature::{public_key, SignerRights, TrustedSigner};
use jos_abi::wire::Limits;
use jos_client::fleet::{FleetKeys, FleetSettings};
use jos_client::store::{self, Home, TrustStore, TrustedDevice};

use crate::{free_port, BootOptions, Qemu};

/// The fleet's name.
pub const FLEET: &str = "lab";
/// The developer signing key every device trusts (wasm and native).
pub const DEVELOPER: [u8; 32] = [0x64; 32];
/// The client key every device trusts.
pub const CLIENT_SECRET: [u8; 32] = [0x63; 32];
/// The fleet's X25519 secret (in every device's configuration and in the home's `fleets/`).
pub const FLEET_SECRET: [u8; 32] = [0x65; 32];

/// A Mosquitto broker on 127.0.0.1:`port` (MQTT 5, anonymous, no persistence: a restart forgets
/// sessions, queued and retained messages), killed on drop.
pub struct Mosquitto {
    child: Option<Child>,
    /// Its port.
    pub port: u16,
    dir: PathBuf,
}

impl Mosquitto {
    /// Starts a broker on a free port.
    pub fn start() -> Mosquitto {
        let dir = std::env::temp_dir().join(format!("jos-mosquitto-{}-{}", std::process::id(), free_port(false)));
        std::fs::create_dir_all(&dir).expect("broker folder");
        let mut broker = Mosquitto { child: None, port: free_port(false), dir };
        broker.restart();
        broker
    }

    /// Starts (again) on the same port, waiting (at most 10 s) until it accepts connections.
    pub fn restart(&mut self) {
        self.stop();
        let config = self.dir.join("mosquitto.conf");
        std::fs::write(
            &config,
            format!("listener {} 127.0.0.1\nallow_anonymous true\npersistence false\nlog_type all\n", self.port),
        )
        .expect("write the broker configuration");
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.dir.join("mosquitto.log")).unwrap();
        let child = Command::new("mosquitto")
            .arg("-c")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start mosquitto (scripts/setup.sh installs it)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "mosquitto did not listen on {}: {}", self.port, self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills the broker (its clients see the connection drop).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The broker's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("mosquitto.log")).unwrap_or_default()
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One emulated device of the lab.
pub struct LabDevice {
    /// Its name (`qemu-fleet-<i>`).
    pub name: String,
    /// QEMU (killed on drop).
    pub qemu: Qemu,
    /// The host port forwarded to its offload service (direct sessions).
    pub session_port: u16,
    /// Its Noise static secret.
    pub noise_secret: [u8; 32],
    /// Its MQTT client id.
    pub client_id: String,
    config: PathBuf,
}

impl Drop for LabDevice {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.config);
    }
}

/// A broker, devices and the client's home.
pub struct FleetLab {
    /// The broker.
    pub broker: Mosquitto,
    /// The devices, in boot order.
    pub devices: Vec<LabDevice>,
    /// `$JOS_HOME` of the client (removed on drop).
    pub home: PathBuf,
}

impl FleetLab {
    /// Starts a broker and `count` devices (`icount`: `-icount shift=N` for guest-time figures)
    /// and waits (at most `boot_wait` each) until every device subscribed to the fleet's jobs.
    pub fn start(count: usize, icount: Option<u32>, boot_wait: Duration) -> Result<FleetLab, String> {
        FleetLab::start_with(&crate::kernel_elf(""), count, icount, boot_wait)
    }

    /// [`FleetLab::start`] with the kernel ELF `kernel`.
    pub fn start_with(
        kernel: &Path,
        count: usize,
        icount: Option<u32>,
        boot_wait: Duration,
    ) -> Result<FleetLab, String> {
        let broker = Mosquitto::start();
        let home = std::env::temp_dir().join(format!("jos-fleet-home-{}-{}", std::process::id(), broker.port));
        let mut lab = FleetLab { broker, devices: Vec::new(), home };
        for index in 0..count {
            let device = lab.boot_device(kernel, index, icount)?;
            lab.devices.push(device);
        }
        for device in &mut lab.devices {
            device
                .qemu
                .wait_for_line_containing("fleet: subscribed to $share/lab/jos/lab/jobs", boot_wait)
                .map_err(|error| format!("{}: {error}", device.name))?;
        }
        lab.write_home().map_err(|error| format!("write the client's home: {error}"))?;
        Ok(lab)
    }

    fn boot_device(&self, kernel: &Path, index: usize, icount: Option<u32>) -> Result<LabDevice, String> {
        let name = format!("qemu-fleet-{index}");
        let noise_secret = [0x70 + index as u8; 32];
        let advert_seed = [0x80 + index as u8; 32];
        let clients = [store::x25519_public(&CLIENT_SECRET)];
        let signers = [TrustedSigner { public_key: public_key(&DEVELOPER), rights: SignerRights::ALL }];
        let repr = ConfigRepr {
            name: &name,
            noise_secret,
            advert_seed,
            network: Network::Dhcp,
            clients: List::from_slice(&clients),
            signers: List::from_slice(&signers),
            policy: Policy {
                max_module_len: 1024 * 1024,
                limits: Limits { fuel: 20_000_000_000, memory: 16 << 20, deadline_ms: 120_000, output: 32 * 1024 },
                queue_len: 8,
                job_ports: jos_abi::config::PortRange::DEFAULT,
            },
        };
        let broker = BrokerSettings {
            address: [10, 0, 2, 2],
            port: self.broker.port,
            fleet: FLEET,
            client_id: None,
            username: None,
            password: None,
        };
        let sections = Sections { broker: Some(broker), fleet_key: Some(FleetKey(FLEET_SECRET)) };
        let config = crate::write_config_with(&repr, &sections, &format!("fleet-lab-{}-{index}", self.broker.port));
        let session_port = free_port(false);
        let mut options = BootOptions::new("raspi0", kernel.to_path_buf());
        options.icount_shift = icount;
        options.extra_args = vec![
            "-netdev".into(),
            format!("user,id=n0,hostfwd=tcp:127.0.0.1:{session_port}-:4748"),
            "-device".into(),
            "usb-net,netdev=n0,port=1".into(),
            "-device".into(),
            format!("loader,file={},addr=0x01F00000,force-raw=on", config.display()),
        ];
        let qemu = Qemu::boot(&options).map_err(|error| format!("start QEMU: {error}"))?;
        let client_id = jos_abi::fleet::default_client_id(&public_key(&advert_seed)).as_str().to_owned();
        Ok(LabDevice { name, qemu, session_port, noise_secret, client_id, config })
    }

    /// The trusted-device records of the devices (as `jos-cli provision` pins them).
    pub fn trusted(&self) -> Vec<TrustedDevice> {
        (0..self.devices.len())
            .map(|index| {
                let device = &self.devices[index];
                let mut record = TrustedDevice::new(
                    &device.name,
                    &public_key(&[0x80 + index as u8; 32]),
                    &store::x25519_public(&device.noise_secret),
                );
                record.session = Some(format!("127.0.0.1:{}", device.session_port));
                record
            })
            .collect()
    }

    fn write_home(&self) -> Result<(), store::StoreError> {
        let home = Home::at(&self.home);
        store::write_key_file(&home.signing_key_path(), "test signing key", &DEVELOPER, true)?;
        store::write_key_file(&home.signing_public_path(), "test signing key", &public_key(&DEVELOPER), false)?;
        store::write_key_file(&home.client_key_path(), "test client key", &CLIENT_SECRET, true)?;
        store::write_key_file(&home.client_public_path(), "test", &store::x25519_public(&CLIENT_SECRET), false)?;
        store::write_key_file(&home.fleet_key_path(FLEET), "test fleet key", &FLEET_SECRET, true)?;
        home.save_trust(&TrustStore { devices: self.trusted() })
    }

    /// The client's keys for the library.
    pub fn keys(&self) -> FleetKeys {
        FleetKeys {
            signing_seed: DEVELOPER,
            fleet_public: store::x25519_public(&FLEET_SECRET),
            devices: self.trusted(),
        }
    }

    /// Settings for a library client of this lab's broker.
    pub fn settings(&self) -> FleetSettings {
        FleetSettings::new("127.0.0.1", self.broker.port, FLEET)
    }

    /// The client's `$JOS_HOME`.
    pub fn home(&self) -> &Path {
        &self.home
    }
}

impl Drop for FleetLab {
    fn drop(&mut self) {
        self.devices.clear();
        let _ = std::fs::remove_dir_all(&self.home);
    }
}
